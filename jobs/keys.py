"""API keys: shown once at creation, stored only as a hash; revoked, never deleted."""
from __future__ import annotations

import hashlib
import re
import secrets

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from jobs.models import ApiKey, utcnow
from webhooks import new_secret

PREFIX = "csmb_"
_ID = re.compile(r"[0-9]{1,10}")  # ASCII digits (str.isdigit() also takes "²")
MAX_ID = 2**31 - 1  # the api_keys.id column's range


class KeyNotFound(LookupError):
    """No key, or more than one, answers to the name or id given."""


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_key(session: Session, name: str) -> tuple[ApiKey, str]:
    """Returns the stored row and the plaintext key, which is never stored."""
    key = PREFIX + secrets.token_urlsafe(32)
    row = ApiKey(name=name, key_hash=hash_key(key), webhook_secret=new_secret())
    session.add(row)
    session.flush()
    return row, key


def find_key(session: Session, key: str) -> ApiKey | None:
    """The row of a plaintext key, revoked or not (the caller refuses a revoked one)."""
    return session.scalar(select(ApiKey).where(ApiKey.key_hash == hash_key(key)))


def list_keys(session: Session) -> list[ApiKey]:
    return list(session.scalars(select(ApiKey).order_by(ApiKey.id)))


def revoke_key(session: Session, name_or_id: str) -> ApiKey:
    """Revokes the one key with this id or name; revoking twice keeps the first time. Names need
    not be unique, and may look like an id ("2026"): a text that several keys answer to is
    refused (give the id of the one meant)."""
    by_name = ApiKey.name == name_or_id
    as_id = int(name_or_id) if _ID.fullmatch(name_or_id) else None
    which = or_(by_name, ApiKey.id == as_id) if as_id is not None and as_id <= MAX_ID else by_name
    matches = list(session.scalars(select(ApiKey).where(which).order_by(ApiKey.id)))
    if not matches:
        raise KeyNotFound(f"no API key named or numbered {name_or_id!r}")
    if len(matches) > 1:
        ids = ", ".join(str(key.id) for key in matches)
        raise KeyNotFound(f"{len(matches)} keys answer to {name_or_id!r} (ids {ids}); revoke one by its id")
    key = matches[0]
    if key.revoked_at is None:
        key.revoked_at = utcnow()
    return key
