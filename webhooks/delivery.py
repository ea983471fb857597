"""One webhook delivery attempt: POST the signed body to a ``VettedTarget``.

- Connects to ``target.ip`` (the address ``vet_url`` checked), never re-resolving the host, while
  the request carries ``Host: target.host`` and TLS uses SNI and verifies the certificate against
  ``target.host``.
- Never follows redirects: a 3xx is a failed attempt. Only 2xx is delivered; 410 means "gone".
- ``timeout_s`` bounds the whole attempt (connect, send, response headers), not each socket
  operation, so a receiver that drips bytes cannot hold a worker; at most 1 KiB of the response
  body is read and then the connection is closed.
- No proxies from the environment, no cookies, no retries here (the schedule lives elsewhere).
- Network failures come back in ``DeliveryResult.error``; only programming errors (bad header
  values, a body that is not bytes) raise.
"""
from __future__ import annotations

import functools
import http.client
import ipaddress
import socket
import ssl
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass

from webhooks.ssrf import VettedTarget

USER_AGENT = "csm-batch-webhooks/1"
MAX_RESPONSE_BYTES = 1024
_CALLER_MAY_NOT_SET = {"host", "content-length", "transfer-encoding", "connection"}


@dataclass(frozen=True)
class DeliveryResult:
    """``status_code`` is None when no HTTP response arrived; ``error`` is None exactly when
    ``delivered``, otherwise a short message safe to show the customer."""

    status_code: int | None
    error: str | None
    duration_ms: int
    delivered: bool
    gone: bool


def deliver(target: VettedTarget, body: bytes, headers: Mapping[str, str], *, timeout_s: float = 10,
            tls_context: ssl.SSLContext | None = None) -> DeliveryResult:
    """POSTs ``body`` with ``headers`` to ``target`` once. ``tls_context`` defaults to the system
    trust store with hostname checking (pass one to trust a private CA)."""
    if not isinstance(body, (bytes, bytearray)):
        raise TypeError("body must be bytes")
    if not timeout_s > 0:
        raise ValueError("timeout_s must be positive")
    try:
        ipaddress.ip_address(target.ip)           # a name here would be resolved by connect()
    except ValueError:
        raise ValueError("target.ip must be an IP address; build targets with vet_url") from None
    request_headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT}
    for name, value in headers.items():
        if name.lower() in _CALLER_MAY_NOT_SET:
            continue
        request_headers[name] = value
    request_headers["Connection"] = "close"

    deadline = _Deadline(timeout_s)
    if target.scheme == "https":
        conn = _PinnedHTTPSConnection(target, deadline, tls_context or _default_tls_context())
    else:
        conn = _PinnedHTTPConnection(target, deadline)
    started = time.monotonic()
    status, timed_out = None, f"timed out after {timeout_s:g} s"
    try:
        deadline.start()
        conn.request("POST", target.path, body=bytes(body), headers=request_headers)
        response = conn.getresponse()
        if deadline.expired:
            # The socket was shut down mid-response and http.client may have taken the cut for
            # the end of the headers: whatever it parsed is not a real answer.
            raise TimeoutError
        status = response.status
        try:
            response.read(MAX_RESPONSE_BYTES)
        except (OSError, http.client.HTTPException):
            pass                                  # the status is what counts
        error = _status_error(status)
    except TimeoutError:  # the deadline's, or a socket call's own (each may take it all), which can wake first
        error = timed_out
    except (OSError, http.client.HTTPException) as exc:
        error = _network_error(exc)
    finally:
        deadline.cancel()
        conn.close()
    duration_ms = int((time.monotonic() - started) * 1000)
    if deadline.expired and status is None:
        error = timed_out
    delivered = status is not None and 200 <= status < 300
    return DeliveryResult(status_code=status, error=None if delivered else error,
                          duration_ms=duration_ms, delivered=delivered, gone=status == 410)


def _status_error(status: int) -> str | None:
    if 200 <= status < 300:
        return None
    if 300 <= status < 400:
        return f"HTTP {status}: redirects are not followed"
    if status == 410:
        return "HTTP 410: endpoint gone"
    return f"HTTP {status}"


def _network_error(exc: BaseException) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS certificate verification failed: {exc.verify_message}"
    if isinstance(exc, ssl.SSLError):
        return f"TLS error: {exc.reason or 'handshake failed'}"
    if isinstance(exc, http.client.RemoteDisconnected):
        return "connection closed without a response"
    if isinstance(exc, http.client.HTTPException):
        return "invalid HTTP response"
    if isinstance(exc, ConnectionResetError):
        return "connection reset"
    return f"connection failed: {exc.strerror or type(exc).__name__}"


@functools.lru_cache(maxsize=1)
def _default_tls_context() -> ssl.SSLContext:
    return ssl.create_default_context()           # verifies certificates and host names


class _Deadline:
    """Shuts the connection's socket down when the attempt's total time is up, waking any
    blocked read; ``expired`` tells the caller that is why the attempt failed."""

    def __init__(self, timeout_s: float):
        self.timeout_s = timeout_s
        self._expired = False
        self._sock: socket.socket | None = None
        self._lock = threading.Lock()
        self._timer = threading.Timer(timeout_s, self._expire)
        self._timer.daemon = True

    def start(self) -> None:
        self._timer.start()

    @property
    def expired(self) -> bool:
        with self._lock:
            return self._expired

    def cancel(self) -> None:
        self._timer.cancel()
        with self._lock:
            self._sock = None

    def watch(self, sock: socket.socket) -> None:
        with self._lock:
            self._sock = sock
            if self._expired:
                _shutdown(sock)

    def _expire(self) -> None:
        with self._lock:
            self._expired = True
            if self._sock is not None:
                _shutdown(self._sock)


def _shutdown(sock: socket.socket) -> None:
    try:
        # The plain socket's shutdown, also for an SSLSocket: it must not touch the TLS state
        # that the reading thread is using.
        socket.socket.shutdown(sock, socket.SHUT_RDWR)
    except OSError:
        pass


def _connect(target: VettedTarget, deadline: _Deadline) -> socket.socket:
    """A TCP connection to the vetted IP itself: no name or address lookup of any kind."""
    sock = socket.socket(socket.AF_INET6 if ":" in target.ip else socket.AF_INET, socket.SOCK_STREAM)
    try:
        deadline.watch(sock)
        sock.settimeout(deadline.timeout_s)
        sock.connect((target.ip, target.port))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except BaseException:
        sock.close()
        raise
    return sock


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """Plain HTTP to the vetted address; Host header from ``target.host``."""

    def __init__(self, target: VettedTarget, deadline: _Deadline):
        super().__init__(target.host, target.port, timeout=deadline.timeout_s)
        self._target, self._deadline = target, deadline

    def connect(self) -> None:
        self.sock = _connect(self._target, self._deadline)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """TLS to the vetted address, with SNI and certificate checks for ``target.host``."""

    def __init__(self, target: VettedTarget, deadline: _Deadline, context: ssl.SSLContext):
        super().__init__(target.host, target.port, timeout=deadline.timeout_s, context=context)
        self._target, self._deadline, self._tls = target, deadline, context

    def connect(self) -> None:
        sock = _connect(self._target, self._deadline)
        tls = self._tls.wrap_socket(sock, server_hostname=self._target.host,
                                    do_handshake_on_connect=False)
        self._deadline.watch(tls)
        self.sock = tls
        tls.do_handshake()
