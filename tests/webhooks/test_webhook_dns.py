"""A resolver that does not answer cannot hold a submission: the lookup is given up after its
time limit and the URL refused as unresolvable."""
import socket
import threading
import time

import pytest

from webhooks import UnsafeUrl, resolver_within, vet_url


def test_a_lookup_that_hangs_is_given_up_after_its_time_limit():
    released = threading.Event()

    def hanging(*args, **kwargs):
        released.wait(10)  # a resolver that never answers (until the test ends)
        return []

    started = time.monotonic()
    with pytest.raises(UnsafeUrl) as refused:
        vet_url("https://slow.example.test/hook", resolve=resolver_within(0.3, hanging))
    released.set()
    assert refused.value.reason == "dns"
    assert time.monotonic() - started < 2


def test_a_lookup_within_its_time_limit_answers_as_usual():
    resolve = resolver_within(5)
    assert resolve("localhost", 80, type=socket.SOCK_STREAM)
    target = vet_url("http://localhost:8080/hook", allow_private=True, resolve=resolve)
    assert target.ip in ("127.0.0.1", "::1")
