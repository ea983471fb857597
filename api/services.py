"""What request handlers need, built once per app and injected for tests."""
from __future__ import annotations

import threading
from dataclasses import dataclass

from celery import Celery
from flask import current_app, g
from prometheus_client import CollectorRegistry
from sqlalchemy.orm import Session, sessionmaker

from config import Settings
from jobs.completion import CompletionSignal
from storage import ObjectStore


@dataclass(frozen=True)
class Services:
    settings: Settings
    sessions: sessionmaker[Session]
    store: ObjectStore
    producer: Celery
    # Signs the local store's file URLs (api.media); None on S3, whose URLs are presigned.
    url_secret: bytes | None
    metrics: CollectorRegistry  # what GET /metrics serves
    completions: CompletionSignal  # wakes synchronous requests when their job finished
    sync_slots: threading.BoundedSemaphore  # SYNC_MAX_WAITING: requests allowed to wait at once


def services() -> Services:
    return current_app.extensions["csm_batch"]


def db() -> Session:
    """The request's database session, opened on first use and closed at teardown."""
    if "db" not in g:
        g.db = services().sessions()
    return g.db


def close_db(_exc: BaseException | None = None) -> None:
    session = g.pop("db", None)
    if session is not None:
        session.close()
