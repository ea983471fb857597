"""URLs a browser's `<audio>` element can play, and the local store's signed file route.

`<audio src>` sends no bearer header, so the API answers a short-lived URL instead of the bytes:
a presigned URL on S3, or on the local store a `/files/...` URL of this API signed with an
expiring HMAC. Both live `PRESIGN_EXPIRY_S`.
"""
from __future__ import annotations

import mimetypes
import time
from datetime import datetime, timezone
from urllib.parse import urlencode

from flask import send_file

from api.errors import ApiError, ErrorCode
from api.inputs import takes
from api.services import services
from jobs.formats import stored_media_type
from jobs.inputs import SignedFileQuery
from jobs.resource import timestamp
from storage import signing

FILES_PREFIX = "/files/"


def playable_url(key: str, filename: str, base_url: str) -> dict:
    """{"url", "expires_at"} for the object at `key`."""
    expires = int(time.time()) + services().settings.presign_expiry_s
    url = services().store.download_url(key, filename)
    if url is None:  # the local store: this API serves the file to whoever holds the signature
        query = urlencode({"expires": expires, "signature": signing.signature(services().url_secret, key, expires)})
        url = f"{base_url}{FILES_PREFIX}{key}?{query}"
    return {"url": url, "expires_at": timestamp(datetime.fromtimestamp(expires, timezone.utc))}


@takes(query=SignedFileQuery)
def serve_file(key: str, query: SignedFileQuery):
    """GET /files/<key>: an object of the local store, for a URL this API signed (no bearer key)."""
    secret = services().url_secret
    signed = secret is not None and query.expires is not None and query.signature is not None
    if not signed or not signing.is_valid(secret, key, query.expires, query.signature, time.time()):
        raise ApiError(ErrorCode.FORBIDDEN, "the URL's signature is invalid or has expired")
    path = services().store.path(key)
    if not path.is_file():
        raise ApiError(ErrorCode.NOT_FOUND, "no such file")
    # The type S3 would answer: the one the worker stored an output with (the platform's guess
    # names WAV audio/x-wav and knows no .pcm), else a guess for anything else.
    mimetype = stored_media_type(key) or mimetypes.guess_type(key)[0] or "application/octet-stream"
    # A file path lets Werkzeug answer Range requests, which media elements use to seek.
    response = send_file(path, mimetype=mimetype, conditional=True, max_age=0)
    response.headers["Cache-Control"] = "private, no-store"
    return response
