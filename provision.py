"""Operator actions on the service's own database and store (no API involved): migrate, make
the store ready, create, list and revoke API keys. `csm-batch` and the demo both use them."""
from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from alembic import command
from alembic.config import Config
from sqlalchemy.orm import Session

from config import Settings
from jobs import keys
from jobs.db import make_session_factory, service_engine
from jobs.models import ApiKey
from storage import make_store

ROOT = Path(__file__).resolve().parent


def migrate(database_url: str) -> None:
    config = Config(str(ROOT / "alembic.ini"))
    config.attributes["database_url"] = database_url
    command.upgrade(config, "head")


def init(settings: Settings) -> None:
    migrate(settings.database_url)
    make_store(settings).ensure_ready()


def create_key(settings: Settings, name: str) -> str:
    """A new key's plaintext (shown once, stored hashed)."""
    with _transaction(settings) as session:
        _row, key = keys.create_key(session, name)
    return key


def list_keys(settings: Settings) -> list[dict]:
    """Every key, revoked ones included: {id, name, created_at, revoked_at}."""
    with _transaction(settings) as session:
        return [_describe(key) for key in keys.list_keys(session)]


def revoke_key(settings: Settings, name_or_id: str) -> dict:
    """Revokes a key by id or unique name (jobs.keys.KeyNotFound otherwise); the API refuses it
    from its next request on."""
    with _transaction(settings) as session:
        return _describe(keys.revoke_key(session, name_or_id))


def _describe(key: ApiKey) -> dict:
    return {"id": key.id, "name": key.name, "created_at": key.created_at, "revoked_at": key.revoked_at}


@contextmanager
def _transaction(settings: Settings) -> Iterator[Session]:
    engine = service_engine(settings)
    try:
        with make_session_factory(engine).begin() as session:
            yield session
    finally:
        engine.dispose()
