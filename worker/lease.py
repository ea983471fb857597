"""Keeps claims alive while the model runs: a heartbeat thread renews their leases.

Each renewal is a short transaction of its own, so no connection is held during synthesis.
When the process dies, renewals stop and the leases expire within `lease_s`: the sweeper then
gives the jobs to another worker, which resumes scripts from their first unfinished line.
"""
from __future__ import annotations

import logging
import threading
from contextlib import contextmanager

from jobs import repository
from jobs.repository import Claim

log = logging.getLogger(__name__)


@contextmanager
def leases_renewed(runtime, claims: list[Claim]):
    stop = threading.Event()
    lease_s = runtime.settings.lease_s

    def renew() -> None:
        while not stop.wait(lease_s / 3):
            try:
                with runtime.sessions.begin() as session:
                    repository.renew_leases(session, claims, lease_s)
            except Exception:  # the next beat tries again; the lease outlives two misses
                log.warning("event=lease_renewal_failed", exc_info=True)

    thread = threading.Thread(target=renew, name="lease-renewal", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
