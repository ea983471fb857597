"""The webhook outbox in SQL: events written with the terminal status, due attempts, history.

An event row is inserted in the same transaction that makes its job or batch terminal, so an
event is never lost when a process dies right after the status changes. The dispatcher takes
due events with a short lease (`next_attempt_at` pushed ahead), attempts them, and records each
attempt; `next_attempt_at` drives the retries.
"""
from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from jobs.models import ApiKey, DisabledWebhookUrl, WebhookAttempt, WebhookEvent, utcnow

PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"
JOB_EVENTS = {
    "succeeded": "job.succeeded",
    "partially_succeeded": "job.partially_succeeded",
    "failed": "job.failed",
    "canceled": "job.canceled",
}
BATCH_COMPLETED = "batch.completed"
ROTATION_OVERLAP = timedelta(hours=24)  # the previous secret keeps signing this long
# A redelivery needs the last attempt to be this old (times WEBHOOK_RETRY_SCALE): a client
# looping on "redeliver" cannot make the service hammer a receiver.
REDELIVERY_INTERVAL = timedelta(minutes=1)


class RedeliveryTooSoon(Exception):
    def __init__(self, retry_after_s: int):
        super().__init__("the last attempt of this event was too recent")
        self.retry_after_s = retry_after_s


def emit(session: Session, api_key_id: int, subject_id: uuid.UUID, type_: str, url: str | None) -> None:
    """Adds an event to the outbox (in the caller's transaction); nothing without a URL."""
    if url is None:
        return
    now = utcnow()
    session.add(
        WebhookEvent(
            id=f"msg_{secrets.token_hex(12)}",
            api_key_id=api_key_id,
            subject_id=subject_id,
            type=type_,
            url=url,
            status=PENDING,
            attempts=0,
            next_attempt_at=now,
            created_at=now,
        )
    )


def take_due(session: Session, *, limit: int, hold_s: float) -> list[WebhookEvent]:
    """Due events for this dispatcher; pushing `next_attempt_at` ahead by `hold_s` keeps other
    dispatchers off them until this attempt is recorded (or this process dies). Each event's
    `next_attempt_at` is then the hold's end, which `release` checks.

    A conditional update on the `next_attempt_at` read here decides which dispatcher takes an
    event, on every database: SQLite has no row locks, so two dispatchers may read the same
    due events. On PostgreSQL, rows another dispatcher is taking are skipped rather than
    waited for (its update would block until that dispatcher commits, then take nothing).
    """
    now = utcnow()
    held_until = now + timedelta(seconds=hold_s)
    query = (
        select(WebhookEvent.id, WebhookEvent.next_attempt_at)
        .where(WebhookEvent.status == PENDING, WebhookEvent.next_attempt_at <= now)
        .order_by(WebhookEvent.next_attempt_at)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    return [
        session.get(WebhookEvent, event_id, populate_existing=True)
        for event_id, due_at in session.execute(query).all()
        if _hold(session, event_id, due_at, held_until)
    ]


def _hold(session: Session, event_id: str, due_at: datetime, held_until: datetime) -> bool:
    """Takes an event read as due at `due_at`; false when another dispatcher took it (or its
    attempt was recorded) since."""
    held = session.execute(
        update(WebhookEvent)
        .where(WebhookEvent.id == event_id, WebhookEvent.status == PENDING, WebhookEvent.next_attempt_at == due_at)
        .values(next_attempt_at=held_until)
    )
    return held.rowcount == 1


def release(session: Session, event_ids: list[str], held_until: datetime) -> None:
    """Makes events this dispatcher took but did not attempt due again now, unless their hold
    ended and another dispatcher took them meanwhile."""
    session.execute(
        update(WebhookEvent)
        .where(
            WebhookEvent.id.in_(event_ids),
            WebhookEvent.status == PENDING,
            WebhookEvent.next_attempt_at == held_until,
        )
        .values(next_attempt_at=utcnow())
    )


@dataclass(frozen=True)
class Attempt:
    status_code: int | None
    error: str | None
    duration_ms: int


def record_attempt(
    session: Session, event_id: str, attempt: Attempt, *, outcome: str, retry_at: datetime | None
) -> None:
    """outcome: delivered, failed (no more attempts) or pending (retry at `retry_at`). Nothing
    is recorded for an event deleted meanwhile (with its job or batch)."""
    now = utcnow()
    recorded = session.execute(
        update(WebhookEvent)
        .where(WebhookEvent.id == event_id)
        .values(
            attempts=WebhookEvent.attempts + 1,
            status=outcome,
            next_attempt_at=retry_at,
            delivered_at=now if outcome == DELIVERED else None,
        )
    )
    if recorded.rowcount == 1:  # the event's row stays locked until commit: it cannot go now
        session.add(
            WebhookAttempt(
                event_id=event_id, attempted_at=now, status_code=attempt.status_code,
                error=attempt.error, duration_ms=attempt.duration_ms,
            )
        )


def disable_url(session: Session, api_key_id: int, url: str) -> None:
    if session.get(DisabledWebhookUrl, (api_key_id, url)) is None:
        session.add(DisabledWebhookUrl(api_key_id=api_key_id, url=url, disabled_at=utcnow()))


def is_disabled(session: Session, api_key_id: int, url: str) -> bool:
    return session.get(DisabledWebhookUrl, (api_key_id, url)) is not None


def events_of(session: Session, subject_id: uuid.UUID) -> list[tuple[WebhookEvent, list[WebhookAttempt]]]:
    events = list(
        session.scalars(select(WebhookEvent).where(WebhookEvent.subject_id == subject_id).order_by(WebhookEvent.created_at))
    )
    attempts = {event.id: [] for event in events}
    for attempt in session.scalars(
        select(WebhookAttempt).where(WebhookAttempt.event_id.in_(attempts)).order_by(WebhookAttempt.id)
    ):
        attempts[attempt.event_id].append(attempt)
    return [(event, attempts[event.id]) for event in events]


def redeliver(
    session: Session, subject_id: uuid.UUID, event_id: str, interval: timedelta = REDELIVERY_INTERVAL
) -> WebhookEvent | None:
    """Queues one more attempt of an event now (same id, same body). Nothing changes while an
    attempt is due within `interval` anyway (or a dispatcher holds the event);
    RedeliveryTooSoon while the last attempt is younger than `interval`."""
    event = session.scalar(
        select(WebhookEvent).where(WebhookEvent.id == event_id, WebhookEvent.subject_id == subject_id)
    )
    if event is None:
        return None
    now = utcnow()
    if event.status == PENDING and event.next_attempt_at <= now + interval:
        return event
    last = session.scalar(select(func.max(WebhookAttempt.attempted_at)).where(WebhookAttempt.event_id == event.id))
    if last is not None and now - last < interval:
        raise RedeliveryTooSoon(int((last + interval - now).total_seconds()) + 1)
    event.status, event.next_attempt_at = PENDING, now
    return event


def signing_secrets(session: Session, api_key_id: int) -> list[str]:
    """The key's current secret, then the previous one while a rotation overlaps."""
    key = session.get(ApiKey, api_key_id)
    found = [key.webhook_secret] if key.webhook_secret else []
    if key.previous_webhook_secret and key.previous_secret_expires_at and key.previous_secret_expires_at > utcnow():
        found.append(key.previous_webhook_secret)
    return found


def rotate_secret(session: Session, api_key_id: int, new_secret: str) -> None:
    key = session.get(ApiKey, api_key_id)
    if key.webhook_secret:
        key.previous_webhook_secret = key.webhook_secret
        key.previous_secret_expires_at = utcnow() + ROTATION_OVERLAP
    key.webhook_secret = new_secret

