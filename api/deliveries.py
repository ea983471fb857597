"""Webhook deliveries of a job or batch, redelivery, and the key's signing secret."""
from __future__ import annotations

import uuid

from flask import g, jsonify

from api.errors import ApiError, ErrorCode
from api.inputs import takes
from api.jobs import owned_job
from api.services import db, services
from jobs import batches, outbox
from jobs.inputs import EventPath
from jobs.models import ApiKey, WebhookAttempt, WebhookEvent
from jobs.resource import timestamp
from webhooks import new_secret


def job_deliveries(job_id: uuid.UUID):
    return _deliveries(owned_job(job_id).id)


def batch_deliveries(batch_id: uuid.UUID):
    return _deliveries(_owned_batch(batch_id))


@takes(path=EventPath)
def redeliver_job_event(job_id: uuid.UUID, event_id: str):
    return _redeliver(owned_job(job_id).id, event_id)


@takes(path=EventPath)
def redeliver_batch_event(batch_id: uuid.UUID, event_id: str):
    return _redeliver(_owned_batch(batch_id), event_id)


def get_webhook_secret():
    return jsonify(_secret(db().get(ApiKey, g.api_key_id)))


def rotate_webhook_secret():
    """A new secret; the previous one keeps signing (a second signature) for 24 h."""
    session = db()
    outbox.rotate_secret(session, g.api_key_id, new_secret())
    session.commit()
    return jsonify(_secret(session.get(ApiKey, g.api_key_id)))


def _owned_batch(batch_id: uuid.UUID) -> uuid.UUID:
    batch = batches.get_owned_batch(db(), g.api_key_id, batch_id)
    if batch is None:
        raise ApiError(ErrorCode.NOT_FOUND, f"no batch {batch_id}")
    return batch.id


def _deliveries(subject_id: uuid.UUID):
    return jsonify({"deliveries": [_event(e, attempts) for e, attempts in outbox.events_of(db(), subject_id)]})


def _redeliver(subject_id: uuid.UUID, event_id: str):
    """Raises outbox.RedeliveryTooSoon (429, api.errors) while the last attempt is too recent."""
    session = db()
    interval = outbox.REDELIVERY_INTERVAL * services().settings.webhook_retry_scale
    event = outbox.redeliver(session, subject_id, event_id, interval)
    if event is None:
        raise ApiError(ErrorCode.NOT_FOUND, f"no webhook event {event_id}")
    session.commit()
    return jsonify(_event(event, [])), 202


def _event(event: WebhookEvent, attempts: list[WebhookAttempt]) -> dict:
    return {
        "id": event.id,
        "type": event.type,
        "url": event.url,
        "status": event.status,
        "created_at": timestamp(event.created_at),
        "delivered_at": timestamp(event.delivered_at),
        "next_attempt_at": timestamp(event.next_attempt_at) if event.status == outbox.PENDING else None,
        "attempts": [
            {
                "attempted_at": timestamp(a.attempted_at),
                "status_code": a.status_code,
                "error": a.error,
                "duration_ms": a.duration_ms,
            }
            for a in attempts
        ],
    }


def _secret(key: ApiKey) -> dict:
    overlapping = key.previous_webhook_secret and key.previous_secret_expires_at
    return {
        "secret": key.webhook_secret,
        "previous_secret_expires_at": timestamp(key.previous_secret_expires_at) if overlapping else None,
    }
