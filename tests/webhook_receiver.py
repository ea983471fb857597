"""A real HTTP webhook receiver on loopback, and an independent Standard Webhooks verifier."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from support import serving


@dataclass
class Received:
    path: str
    headers: dict
    body: bytes
    started: float  # time.time() when the request arrived
    answered: float | None = None  # and when its answer was sent

    @property
    def json(self) -> dict:
        return json.loads(self.body)


@dataclass
class Receiver:
    base: str
    requests: list[Received] = field(default_factory=list)
    # path -> status codes to answer in turn (the last one repeats)
    answers: dict[str, list[int]] = field(default_factory=dict)
    delay_s: float = 0.0  # how long every answer takes: a slow receiver

    def url(self, path: str) -> str:
        return f"{self.base}{path}"

    def at(self, path: str) -> list[Received]:
        return [r for r in self.requests if r.path == path]

    def wait_for(self, path: str, count: int, timeout: float = 120) -> list[Received]:
        deadline = time.monotonic() + timeout
        while len(self.at(path)) < count:
            assert time.monotonic() < deadline, f"{path}: {len(self.at(path))} of {count} deliveries"
            time.sleep(0.1)
        return self.at(path)


@contextmanager
def run_receiver():
    receiver = Receiver(base="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            received = Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body, time.time())
            receiver.requests.append(received)
            answers = receiver.answers.get(self.path, [200])
            status = answers.pop(0) if len(answers) > 1 else answers[0]
            time.sleep(receiver.delay_s)
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()
            received.answered = time.time()

        def log_message(self, *args):
            pass

    with serving(ThreadingHTTPServer(("127.0.0.1", 0), Handler)) as receiver.base:
        yield receiver


def verify(secret: str, request: Received) -> bool:
    """Standard Webhooks, written from the spec: v1,base64(HMAC-SHA256(key, id.timestamp.body))."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = b".".join([request.headers["webhook-id"].encode(), request.headers["webhook-timestamp"].encode(), request.body])
    expected = "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    return any(hmac.compare_digest(expected, sig) for sig in request.headers["webhook-signature"].split(" "))
