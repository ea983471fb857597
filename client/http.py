"""The API over HTTP: a bearer key, a timeout on every call, the API's JSON error envelope
raised as ApiRefused, and downloads that follow redirects to other hosts (presigned S3 URLs)
without sending the key there."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import requests

# api/idempotency.py's headers (the client never imports the API; the end-to-end tests pin them).
IDEMPOTENCY_HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
MAX_REDIRECTS = 5
CHUNK_BYTES = 1024 * 1024


class ApiRefused(Exception):
    """The API answered with an error: its HTTP status and the envelope's fields."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None, problems: list | None = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.problems = problems or []  # [{"line"?, "field", "message"}]


class Unreachable(Exception):
    """A URL gave no answer: refused, unresolvable, cut off, or silent past the timeout."""


class BadDownload(Exception):
    """A file cannot be saved as the API states it: its sha256 differs, or its name leaves the folder."""


@dataclass(frozen=True)
class Created:
    """The answer to a POST that creates work; `replayed`: an earlier request with the same
    Idempotency-Key created it, and this one created nothing."""

    body: dict
    replayed: bool = False


@dataclass
class ApiClient:
    base_url: str
    key: str = field(repr=False)
    timeout_s: float = 30.0
    session: requests.Session = field(default_factory=requests.Session, repr=False)

    def get(self, path: str, **params) -> dict:
        return self._send("GET", path, params=params).json()

    def get_text(self, path: str, **params) -> str:
        return self._send("GET", path, params=params).text

    def post(self, path: str, *, idempotency_key: str | None = None, **body) -> Created:
        """`body`: requests' json=, data=, files= or params=."""
        headers = {IDEMPOTENCY_HEADER: idempotency_key} if idempotency_key else {}
        response = self._send("POST", path, headers=headers, **body)
        return Created(response.json(), response.headers.get(REPLAYED_HEADER) == "true")

    def download(self, path: str, target: Path, sha256: str | None = None) -> str:
        """Streams the file at `path` into `target`, replaced only once complete and, given
        `sha256`, only if the file has it (else BadDownload, `target` untouched); its sha256."""
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".part")
        digest = hashlib.sha256()
        response = self._send("GET", path, stream=True)
        try:
            with response, partial.open("wb") as out:
                for chunk in response.iter_content(CHUNK_BYTES):
                    digest.update(chunk)
                    out.write(chunk)
        except requests.RequestException as exc:
            partial.unlink(missing_ok=True)
            raise Unreachable(f"the download of {response.url} broke off: {exc}") from None
        got = digest.hexdigest()
        if sha256 is not None and got != sha256:
            partial.unlink()
            raise BadDownload(f"{target}: sha256 {got}, but the API states {sha256}")
        partial.replace(target)
        return got

    def _send(self, method: str, path: str, *, headers: dict | None = None, **kwargs) -> requests.Response:
        """One call, following a GET's redirects by hand: the key goes only to the API's own
        origin, never to the host a redirect points at."""
        url = self.base_url + path
        for _ in range(MAX_REDIRECTS + 1):
            sent = dict(headers or {})
            if _origin(url) == _origin(self.base_url):
                sent["Authorization"] = f"Bearer {self.key}"
            try:
                response = self.session.request(
                    method, url, headers=sent, timeout=self.timeout_s, allow_redirects=False, **kwargs
                )
            except requests.Timeout:
                raise Unreachable(f"{url} did not answer within {self.timeout_s:g} s") from None
            except requests.RequestException as exc:
                raise Unreachable(f"could not reach {url}: {_reason(exc)}") from None
            if not (response.is_redirect and method == "GET"):
                break
            url = urljoin(url, response.headers["Location"])
            kwargs.pop("params", None)  # the Location carries its own query
            response.close()
        else:
            raise Unreachable(f"more than {MAX_REDIRECTS} redirects from {self.base_url + path}")
        if response.status_code >= 400:
            raise _refusal(response)
        return response


def _origin(url: str) -> tuple[str, str | None, int | None]:
    parts = urlsplit(url)
    return parts.scheme, parts.hostname, parts.port or {"http": 80, "https": 443}.get(parts.scheme)


def _reason(exc: requests.RequestException) -> str:
    """The innermost cause (e.g. "Connection refused"), not urllib3's nested repr."""
    cause: BaseException = exc
    while cause.__context__ is not None:
        cause = cause.__context__
    return str(cause) or type(cause).__name__


def _refusal(response: requests.Response) -> ApiRefused:
    try:
        error = response.json()["error"]
        return ApiRefused(
            response.status_code, error["code"], error["message"], error.get("field"), error.get("problems")
        )
    except (ValueError, KeyError, TypeError):  # not the API's envelope: a proxy's page, S3's XML
        message = f"HTTP {response.status_code} {response.reason} from {response.url}"
        return ApiRefused(response.status_code, "http_error", message)
