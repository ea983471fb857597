"""An HTTP proxy in front of the real S3 server that can refuse calls as S3 does: a 403 with
S3's XML error body, e.g. for a key whose policy no longer allows deletes."""
from __future__ import annotations

import http.client
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit
from xml.sax.saxutils import escape

from support import serving

# Hop-by-hop headers are the proxy's own business on each side.
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "expect", "proxy-connection"}


@dataclass
class RefusingS3:
    url: str
    refused_methods: set[str] = field(default_factory=set)  # e.g. {"PUT", "POST", "DELETE"}
    code: str = "AccessDenied"
    refusals: int = 0  # how many calls were refused

    @contextmanager
    def refusing(self, *methods: str, code: str = "AccessDenied"):
        self.refused_methods, self.code = set(methods), code
        try:
            yield self
        finally:
            self.refused_methods = set()


def _error_body(code: str, resource: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>Access Denied</Message><Resource>{escape(resource)}</Resource>"
        "<RequestId>4442587FB7D0A2F9</RequestId></Error>"
    ).encode()


@contextmanager
def run_refusing_s3(upstream_url: str):
    """The proxy on a loopback port, passing every call to `upstream_url` until told to refuse."""
    upstream = urlsplit(upstream_url)
    proxy = RefusingS3(url="")

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as boto3's connection pool expects

        def _forward(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            if self.command in proxy.refused_methods:
                proxy.refusals += 1
                return self._answer(403, {"Content-Type": "application/xml"}, _error_body(proxy.code, self.path))
            connection = http.client.HTTPConnection(upstream.hostname, upstream.port, timeout=30)
            try:
                headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
                connection.request(self.command, self.path, body=body, headers=headers)
                answer = connection.getresponse()
                data = answer.read()
                kept = {k: v for k, v in answer.getheaders() if k.lower() not in _HOP_BY_HOP}
                self._answer(answer.status, kept, data)
            finally:
                connection.close()

        def _answer(self, status: int, headers: dict[str, str], data: bytes):
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            if "content-length" not in {name.lower() for name in headers}:  # a HEAD keeps the object's
                self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = _forward

        def log_message(self, *args):
            pass

    with serving(ThreadingHTTPServer(("127.0.0.1", 0), Handler)) as proxy.url:
        yield proxy
