"""Deleting jobs and a batch: their rows and every row that names them.

A job's lines go with it (ON DELETE CASCADE), as do its webhook events' attempts; its webhook
events and the idempotency record that replays its creation are deleted here, so neither a
pending delivery nor a retried submission can point at a job that is gone. Running jobs are
never deleted: the DELETE is conditional on the status, so a worker that claims a queued job at
the same moment either wins (the delete refuses) or finds no row (its claim is empty).
"""
from __future__ import annotations

import uuid

from sqlalchemy import ColumnElement, delete, func, select
from sqlalchemy.orm import Session

from jobs.models import Batch, IdempotencyRecord, Job, WebhookEvent
from jobs.status import JobStatus

_RUNNING = Job.status == JobStatus.RUNNING.value


def running(session: Session, which: ColumnElement[bool]) -> int:
    """How many of the jobs `which` selects are running."""
    return session.scalar(select(func.count()).select_from(Job).where(which, _RUNNING))


def delete_jobs(session: Session, which: ColumnElement[bool]) -> bool:
    """Deletes the jobs `which` selects with what names them, in the caller's transaction;
    False when one of them is running (the caller rolls back: a partial delete is not kept)."""
    total = session.scalar(select(func.count()).select_from(Job).where(which))
    session.execute(delete(WebhookEvent).where(WebhookEvent.subject_id.in_(select(Job.id).where(which))))
    deleted = session.execute(
        delete(Job).where(which, ~_RUNNING).execution_options(synchronize_session=False)
    ).rowcount
    return deleted == total


def delete_batch(session: Session, batch_id: uuid.UUID) -> bool:
    """Deletes a batch, its jobs and their rows (see delete_jobs); False when a job is running."""
    if not delete_jobs(session, Job.batch_id == batch_id):
        return False
    session.execute(delete(WebhookEvent).where(WebhookEvent.subject_id == batch_id))
    session.execute(delete(Batch).where(Batch.id == batch_id).execution_options(synchronize_session=False))
    return True


def forget_submission(session: Session, api_key_id: int, location: str) -> None:
    """Deletes the idempotency record whose replay would answer with `location` (the deleted
    job's or batch's URL): a client that submits the same request again gets new work."""
    session.execute(
        delete(IdempotencyRecord).where(IdempotencyRecord.api_key_id == api_key_id, IdempotencyRecord.location == location)
    )
