"""Idempotency keys, the SQL side: reserve a key, store the first response, replay it.

A record is keyed by (api_key_id, key). Its life:

1. ``reserve`` inserts it with ``status_code`` NULL ("processing") in a transaction of its own,
   committed before the request does any work. The primary key makes the insert the lock: of
   two concurrent requests with one key, exactly one inserts.
2. After the request's own transaction has committed (the job exists), ``complete`` stores the
   response; if the request did no work (a refusal, a 5xx or an exception), ``release`` deletes
   the record so the client can retry. So a stored response always describes committed work.
3. If the process dies between committing the job and storing the response, the record stays
   "processing". After ``PROCESSING_TIMEOUT`` it counts as abandoned and the next request with
   the same key and body takes it over and runs again: at-least-once in that narrow crash
   window (a second job is possible), never a replay of work that was not committed.
4. After ``IDEMPOTENCY_TTL`` a record is ignored (a reuse of the key starts afresh) and
   ``purge_expired``, called by the periodic sweeper, deletes it.

``created_at`` doubles as the reservation's token: ``complete`` and ``release`` only touch the
record they reserved, so a slow request whose reservation was taken over cannot overwrite or
delete its successor's. Plain inserts, conditional updates and IntegrityError: the same on
PostgreSQL and SQLite.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from jobs.models import IdempotencyRecord

IDEMPOTENCY_TTL = timedelta(hours=24)
# Longer than any request takes between reserving and completing (publishing included).
PROCESSING_TIMEOUT = timedelta(seconds=60)
_ATTEMPTS = 3  # a record released or taken over between our insert and our read: look again


@dataclass(frozen=True)
class Reserved:
    """This request owns the key; ``token`` identifies the reservation."""

    token: datetime


@dataclass(frozen=True)
class Replay:
    """A completed record: the first response, to be sent again."""

    status_code: int
    body: str
    location: str | None


class KeyReused:
    """The key was used for a different request."""


class InProgress:
    """Another request with this key is still being processed."""


Outcome = Reserved | Replay | KeyReused | InProgress


def reserve(
    sessions: sessionmaker[Session], api_key_id: int, key: str, request_hash: str, now: datetime
) -> Outcome:
    """Reserves the key for this request, or says why not; commits its own transactions."""
    for _ in range(_ATTEMPTS):
        try:
            with sessions.begin() as session:
                session.add(
                    IdempotencyRecord(api_key_id=api_key_id, key=key, request_hash=request_hash, created_at=now)
                )
            return Reserved(now)
        except IntegrityError:
            pass  # the key exists
        with sessions() as session:
            record = session.get(IdempotencyRecord, (api_key_id, key))
        if record is None:
            continue  # released meanwhile
        expired = record.created_at <= now - IDEMPOTENCY_TTL
        same = record.request_hash == request_hash
        abandoned = same and record.status_code is None and record.created_at <= now - PROCESSING_TIMEOUT
        if expired or abandoned:
            if _take_over(sessions, record, request_hash, now):
                return Reserved(now)
            continue  # someone else took it over first
        if not same:
            return KeyReused()
        if record.status_code is None:
            return InProgress()
        return Replay(record.status_code, record.response_body or "", record.location)
    return InProgress()


def complete(
    sessions: sessionmaker[Session], api_key_id: int, key: str, token: datetime,
    status_code: int, body: str, location: str | None,
) -> bool:
    """Stores the response of a reservation; False if the reservation was taken over."""
    with sessions.begin() as session:
        result = session.execute(
            update(IdempotencyRecord)
            .where(*_reservation(api_key_id, key, token))
            .values(status_code=status_code, response_body=body, location=location)
        )
    return result.rowcount == 1


def release(sessions: sessionmaker[Session], api_key_id: int, key: str, token: datetime) -> None:
    """Deletes a reservation whose request failed, so that the key can be used again."""
    with sessions.begin() as session:
        session.execute(delete(IdempotencyRecord).where(*_reservation(api_key_id, key, token)))


def purge_expired(session: Session, now: datetime) -> int:
    """Deletes the records older than IDEMPOTENCY_TTL; the caller commits. Returns how many."""
    result = session.execute(
        delete(IdempotencyRecord).where(IdempotencyRecord.created_at <= now - IDEMPOTENCY_TTL)
    )
    return result.rowcount


def _take_over(
    sessions: sessionmaker[Session], record: IdempotencyRecord, request_hash: str, now: datetime
) -> bool:
    # Conditional on the token we read: of several requests taking over, one wins.
    with sessions.begin() as session:
        result = session.execute(
            update(IdempotencyRecord)
            .where(
                IdempotencyRecord.api_key_id == record.api_key_id,
                IdempotencyRecord.key == record.key,
                IdempotencyRecord.created_at == record.created_at,
            )
            .values(request_hash=request_hash, status_code=None, response_body=None, location=None, created_at=now)
        )
    return result.rowcount == 1


def _reservation(api_key_id: int, key: str, token: datetime):
    return (
        IdempotencyRecord.api_key_id == api_key_id,
        IdempotencyRecord.key == key,
        IdempotencyRecord.created_at == token,
        IdempotencyRecord.status_code.is_(None),
    )
