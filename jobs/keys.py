"""API keys: shown once at creation, stored only as a hash; revoked, never deleted."""
from __future__ import annotations

import hashlib
import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session

from jobs.models import ApiKey, utcnow
from webhooks import new_secret

PREFIX = "csmb_"


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
    """Revokes the key with this id, or the one key with this name; revoking twice keeps the
    first time. Names need not be unique: a name shared by several keys is refused (give the id)."""
    if name_or_id.isdigit():
        matches = [key for key in [session.get(ApiKey, int(name_or_id))] if key is not None]
    else:
        matches = list(session.scalars(select(ApiKey).where(ApiKey.name == name_or_id)))
    if not matches:
        raise KeyNotFound(f"no API key named or numbered {name_or_id!r}")
    if len(matches) > 1:
        ids = ", ".join(str(key.id) for key in matches)
        raise KeyNotFound(f"{len(matches)} keys are named {name_or_id!r} (ids {ids}); revoke one by its id")
    key = matches[0]
    if key.revoked_at is None:
        key.revoked_at = utcnow()
    return key
