"""Bearer API keys on every /v1 route and on /generate_audio."""
from __future__ import annotations

from flask import g, request

from api.errors import ApiError, ErrorCode
from api.services import db
from jobs.keys import find_key


def needs_key(path: str) -> bool:
    return path.startswith("/v1/") or path == "/generate_audio"


def require_api_key() -> None:
    if not needs_key(request.path):
        return
    scheme, _, key = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise ApiError(ErrorCode.UNAUTHORIZED, "send 'Authorization: Bearer <api key>'")
    api_key = find_key(db(), key.strip())
    if api_key is None:
        raise ApiError(ErrorCode.UNAUTHORIZED, "unknown API key")
    if api_key.revoked_at is not None:
        raise ApiError(ErrorCode.UNAUTHORIZED, "this API key was revoked")
    g.api_key_id = api_key.id
