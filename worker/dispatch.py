"""The webhook dispatcher: attempts due outbox events, records every attempt, schedules retries.

Each attempt re-vets the URL (SSRF guard) and connects to the vetted address; only a 2xx is a
delivery; 410 disables the URL for the key; other failures retry on the schedule (scaled by
WEBHOOK_RETRY_SCALE) until it runs out. No database connection is held during the HTTP call.

A run has a time budget (WEBHOOK_DISPATCH_BUDGET_S) shorter than the hold on the events it takes:
it starts no attempt once the budget is spent (but the first of what it took), and every attempt
ends within WEBHOOK_TIMEOUT_S, so each attempt ends while its event is still held and no other
dispatcher can send it at the same time. Events are taken a few at a time, so parallel dispatchers share a backlog, and those
taken but not reached go back at once.
"""
from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session, sessionmaker

from config import Settings
from jobs import outbox, repository
from jobs.models import Batch, Job, WebhookEvent, utcnow
from jobs.resource import batch_resource, job_resource, timestamp
from webhooks import UnsafeUrl, deliver, headers, next_delay, resolver_within, vet_url
from worker import metrics

log = logging.getLogger(__name__)

DUE_PER_TAKE = 10
HOLD_MARGIN_S = 10.0  # beyond the budget and one attempt: DNS, database writes, host clocks
# An attempt's outcome as metrics name it: the event's next state.
ATTEMPT_OUTCOMES = {outbox.DELIVERED: "delivered", outbox.PENDING: "retrying", outbox.FAILED: "failed"}


@dataclass(frozen=True)
class DueEvent:
    id: str
    api_key_id: int
    url: str
    attempts: int  # before this one
    held_until: datetime  # no other dispatcher takes it before


def dispatch_due(settings: Settings, sessions: sessionmaker[Session]) -> int:
    """Attempts due events until none is left or the run's budget is spent; returns how many
    were attempted."""
    deadline = time.monotonic() + settings.webhook_dispatch_budget_s
    attempted = 0
    while (left_s := deadline - time.monotonic()) > 0:
        due = _take(settings, sessions, hold_s=left_s + settings.webhook_timeout_s + HOLD_MARGIN_S)
        if not due:
            break
        for index, (event, body, secrets, disabled) in enumerate(due):
            if index and time.monotonic() >= deadline:  # the first always goes: progress on a slow database
                with sessions.begin() as session:
                    outbox.release(session, [e.id for e, *_ in due[index:]], event.held_until)
                break
            attempted += 1
            if disabled:
                attempt = outbox.Attempt(None, "the URL answered 410 Gone earlier and is disabled", 0)
                _record(sessions, event, attempt, outbox.FAILED, None)
            else:
                _attempt(settings, sessions, event, body.encode(), secrets)
    return attempted


def _take(settings: Settings, sessions, *, hold_s: float) -> list[tuple[DueEvent, str, list[str], bool]]:
    """Up to DUE_PER_TAKE due events, held for `hold_s`: (event, body, signing secrets, disabled)."""
    with sessions.begin() as session:
        return [
            (
                DueEvent(e.id, e.api_key_id, e.url, e.attempts, e.next_attempt_at),
                _payload(session, e, settings),
                outbox.signing_secrets(session, e.api_key_id),
                outbox.is_disabled(session, e.api_key_id, e.url),
            )
            for e in outbox.take_due(session, limit=DUE_PER_TAKE, hold_s=hold_s)
        ]


def _attempt(settings: Settings, sessions, event: DueEvent, body: bytes, secrets: list[str]) -> None:
    try:
        target = vet_url(
            event.url, allow_private=settings.webhook_allow_private, resolve=resolver_within(settings.dns_timeout_s)
        )
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
            data = batch_resource(batch, repository.batch_status_counts(session, batch.id), base_url, settings.result_ttl)
        else:
            data = job_resource(session.get(Job, event.subject_id), base_url, settings.result_ttl)
        event.payload = json.dumps(
            {"type": event.type, "timestamp": timestamp(event.created_at), "data": data}, separators=(",", ":")
        )
    return event.payload
