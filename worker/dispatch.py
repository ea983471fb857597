"""The webhook dispatcher: attempts due outbox events, records every attempt, schedules retries.

Each attempt re-vets the URL (SSRF guard) and connects to the vetted address; only a 2xx is a
delivery; 410 disables the URL for the key; other failures retry on the schedule (scaled by
WEBHOOK_RETRY_SCALE) until it runs out. No database connection is held during the HTTP call.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session, sessionmaker

from config import Settings
from jobs import outbox, repository
from jobs.models import Batch, Job, WebhookEvent, utcnow
from jobs.resource import batch_resource, job_resource, timestamp
from webhooks import UnsafeUrl, deliver, headers, next_delay, vet_url
from worker import metrics

log = logging.getLogger(__name__)

DUE_PER_RUN = 50
# An attempt's outcome as metrics name it: the event's next state.
ATTEMPT_OUTCOMES = {outbox.DELIVERED: "delivered", outbox.PENDING: "retrying", outbox.FAILED: "failed"}


@dataclass(frozen=True)
class DueEvent:
    id: str
    api_key_id: int
    url: str
    attempts: int  # before this one


def dispatch_due(settings: Settings, sessions: sessionmaker[Session]) -> int:
    """Attempts every due event once; returns how many were attempted."""
    hold_s = 3 * settings.webhook_timeout_s + 30  # no other dispatcher touches them meanwhile
    with sessions.begin() as session:
        due = [
            (DueEvent(e.id, e.api_key_id, e.url, e.attempts), _payload(session, e, settings))
            for e in outbox.take_due(session, limit=DUE_PER_RUN, hold_s=hold_s)
        ]
        secrets = {event.api_key_id: outbox.signing_secrets(session, event.api_key_id) for event, _ in due}
        disabled = {event.id for event, _ in due if outbox.is_disabled(session, event.api_key_id, event.url)}
    for event, body in due:
        if event.id in disabled:
            attempt = outbox.Attempt(None, "the URL answered 410 Gone earlier and is disabled", 0)
            _record(sessions, event, attempt, outbox.FAILED, None)
            continue
        _attempt(settings, sessions, event, body.encode(), secrets[event.api_key_id])
    return len(due)


def _attempt(settings: Settings, sessions, event: DueEvent, body: bytes, secrets: list[str]) -> None:
    try:
        target = vet_url(event.url, allow_private=settings.webhook_allow_private)
    except UnsafeUrl as exc:
        # A name that does not resolve may come back; an unsafe address will not.
        _finish(settings, sessions, event, outbox.Attempt(None, str(exc), 0), retry=exc.reason == "dns")
        return
    result = deliver(target, body, headers(secrets, event.id, None, body), timeout_s=settings.webhook_timeout_s)
    attempt = outbox.Attempt(result.status_code, result.error, result.duration_ms)
    if result.delivered:
        _record(sessions, event, attempt, outbox.DELIVERED, None)
    elif result.gone:
        with sessions.begin() as session:
            outbox.disable_url(session, event.api_key_id, event.url)
        _record(sessions, event, attempt, outbox.FAILED, None)
        log.warning("event=webhook_url_disabled api_key_id=%s", event.api_key_id)
    else:
        _finish(settings, sessions, event, attempt, retry=True)


def _finish(settings: Settings, sessions, event: DueEvent, attempt: outbox.Attempt, *, retry: bool) -> None:
    delay = next_delay(event.attempts + 2) if retry else None  # attempts are numbered from 1
    if delay is None:
        _record(sessions, event, attempt, outbox.FAILED, None)
    else:
        retry_at = utcnow() + timedelta(seconds=delay * settings.webhook_retry_scale)
        _record(sessions, event, attempt, outbox.PENDING, retry_at)


def _record(sessions, event: DueEvent, attempt: outbox.Attempt, outcome: str, retry_at: datetime | None) -> None:
    with sessions.begin() as session:
        outbox.record_attempt(session, event.id, attempt, outcome=outcome, retry_at=retry_at)
    metrics.webhook_attempt(ATTEMPT_OUTCOMES[outcome])
    log.info(
        "event=webhook_attempt webhook_id=%s attempt=%d status=%s outcome=%s",
        event.id, event.attempts + 1, attempt.status_code, outcome,
    )


def _payload(session: Session, event: WebhookEvent, settings: Settings) -> str:
    """The body of every attempt: rendered once, when the subject is already final."""
    if event.payload is None:
        base_url = settings.public_api_url or ""
        if event.type == outbox.BATCH_COMPLETED:
            batch = session.get(Batch, event.subject_id)
            data = batch_resource(batch, repository.batch_status_counts(session, batch.id), base_url)
        else:
            data = job_resource(session.get(Job, event.subject_id), base_url)
        event.payload = json.dumps(
            {"type": event.type, "timestamp": timestamp(event.created_at), "data": data}, separators=(",", ":")
        )
    return event.payload
