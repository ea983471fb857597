"""The Idempotency-Key header on the POSTs that create work (see jobs.idempotency).

With the header, per API key and for IDEMPOTENCY_TTL: the same key and request replay the first
response (status, JSON body and Location, plus ``Idempotent-Replayed: true``) without running
the view again; the same key with another request is 422 ``idempotency_key_reused``; a key whose
first request is still running is 409 ``idempotency_key_in_progress``. Only a 2xx is kept: it
is the one answer that reflects work the view did. Any other answer (a 4xx refused by
validation, a 5xx such as 503, an exception) releases the key, so a retry with it is evaluated
afresh, e.g. once the missing voice is uploaded or the server is back. Without the header
nothing changes.
"""
from __future__ import annotations

import functools
import hashlib
import logging

from flask import Response, current_app, g, request

from api.errors import ApiError, ErrorCode
from api.services import services
from jobs import idempotency as records
from jobs.models import utcnow

log = logging.getLogger(__name__)

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
MAX_KEY_CHARS = 255  # the column's size


def idempotent(view):
    """Wraps a view that creates something. The body is read here first (to fingerprint the
    request), so the view's own body limit (api.inputs.takes' max_body_bytes) applies here."""
    inputs = getattr(view, "inputs", None)
    max_body_bytes = inputs.max_body_bytes if inputs is not None else None

    @functools.wraps(view)
    def wrapper(**kwargs):
        key = request.headers.get(HEADER)
        if key is None:
            return view(**kwargs)
        _check_key(key)
        if max_body_bytes is not None:
            request.max_content_length = max_body_bytes
        sessions = services().sessions
        api_key_id = g.api_key_id
        outcome = records.reserve(sessions, api_key_id, key, request_fingerprint(), utcnow())
        if isinstance(outcome, records.KeyReused):
            raise ApiError(ErrorCode.IDEMPOTENCY_KEY_REUSED, "this key was used for a different request", HEADER)
        if isinstance(outcome, records.InProgress):
            raise ApiError(
                ErrorCode.IDEMPOTENCY_KEY_IN_PROGRESS, "a request with this key is still being processed; retry later",
                HEADER,
            )
        if isinstance(outcome, records.Replay):
            log.info("event=idempotent_replay api_key_id=%s status=%d", api_key_id, outcome.status_code)
            return _replay(outcome)

        token = outcome.token
        try:
            response = _run(view, kwargs)
        except BaseException:
            _release(sessions, api_key_id, key, token)
            raise
        if not 200 <= response.status_code < 300 or not response.is_json:
            _release(sessions, api_key_id, key, token)
            return response
        try:
            stored = records.complete(
                sessions, api_key_id, key, token,
                response.status_code, response.get_data(as_text=True), response.headers.get("Location"),
            )
        except Exception:
            # The work is committed: answer it. The key stays "processing" until abandoned.
            log.warning("event=idempotency_store_failed api_key_id=%s", api_key_id, exc_info=True)
        else:
            if not stored:
                log.warning("event=idempotency_reservation_lost api_key_id=%s", api_key_id)
        return response

    wrapper.idempotent = True  # the OpenAPI document lists the header (api.openapi)
    return wrapper


def request_fingerprint() -> str:
    """sha256 over what makes two requests the same: method, path, query string, content type
    and body. A multipart body counts by its fields and files, not by its random boundary."""
    digest = hashlib.sha256()

    def feed(part: bytes | str) -> None:
        data = part.encode() if isinstance(part, str) else part
        digest.update(len(data).to_bytes(8, "big") + data)

    feed(request.method)
    feed(request.path)
    feed(request.query_string)
    if request.mimetype == "multipart/form-data":
        feed(request.mimetype)
        for name, value in sorted(request.form.items(multi=True)):
            feed(name)
            feed(value)
        for name, upload in sorted(request.files.items(multi=True), key=lambda item: item[0]):
            data = upload.stream.read()
            upload.stream.seek(0)  # the view reads it again
            feed(name)
            feed(upload.filename or "")
            feed(upload.mimetype)
            feed(hashlib.sha256(data).digest())
    else:
        feed(request.content_type or "")
        feed(request.get_data())  # cached: the view reads the same bytes
    return digest.hexdigest()


def _check_key(key: str) -> None:
    if not 1 <= len(key) <= MAX_KEY_CHARS or not all(" " <= char <= "~" for char in key):
        raise ApiError(ErrorCode.INVALID_HEADER, f"must be 1 to {MAX_KEY_CHARS} printable ASCII characters", HEADER)


def _run(view, kwargs) -> Response:
    """The view's response, or its exception rendered by the error handlers (api.errors)."""
    app = current_app
    try:
        return app.make_response(view(**kwargs))
    except Exception as exc:
        return app.make_response(app.handle_user_exception(exc))


def _release(sessions, api_key_id: int, key: str, token) -> None:
    try:
        records.release(sessions, api_key_id, key, token)
    except Exception:
        # The error being answered matters more; the key is abandoned after PROCESSING_TIMEOUT.
        log.warning("event=idempotency_release_failed api_key_id=%s", api_key_id, exc_info=True)


def _replay(record: records.Replay) -> Response:
    response = Response(record.body, status=record.status_code, mimetype="application/json")
    if record.location is not None:
        response.headers["Location"] = record.location
    response.headers[REPLAYED_HEADER] = "true"
    return response
