"""Name resolution with a time limit: `socket.getaddrinfo` has none a caller can set, and a
resolver that does not answer would hold the request that needs it."""
from __future__ import annotations

import socket
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout

from webhooks.ssrf import Resolver

# Lookups run here; one that hangs holds a thread until the system resolver gives up, not the caller.
_lookups = ThreadPoolExecutor(max_workers=4, thread_name_prefix="dns")


def resolver_within(timeout_s: float, lookup: Resolver = socket.getaddrinfo) -> Resolver:
    """`lookup` (getaddrinfo) raising TimeoutError (an OSError, like any failed lookup) after
    `timeout_s`; pass it to `vet_url(..., resolve=...)`."""

    def resolve(host, port, *args, **kwargs):
        pending = _lookups.submit(lookup, host, port, *args, **kwargs)
        try:
            return pending.result(timeout=timeout_s)
        except FutureTimeout:
            raise TimeoutError(f"resolving {host} took longer than {timeout_s} s") from None

    return resolve
