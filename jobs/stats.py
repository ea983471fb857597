"""Operational figures read from SQL, the same whichever process asks (for /metrics)."""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from jobs import outbox
from jobs.models import Batch, Job, WebhookEvent, utcnow
from jobs.status import BatchStatus, JobStatus


@dataclass(frozen=True)
class RunningBatch:
    id: uuid.UUID
    jobs_done: int
    jobs_total: int


@dataclass(frozen=True)
class Snapshot:
    jobs: dict[tuple[str, str], int]  # (status, queue) -> jobs
    oldest_queued: dict[str, datetime]  # queue -> when its oldest queued job was submitted
    webhook_events_pending: int
    webhook_events_due: int  # pending and due now: the dispatcher's backlog
    running_batches: list[RunningBatch]
    taken_at: datetime


def snapshot(session: Session) -> Snapshot:
    now = utcnow()
    jobs = {
        (status, queue): count
        for status, queue, count in session.execute(
            select(Job.status, Job.queue, func.count()).group_by(Job.status, Job.queue)
        )
    }
    oldest = dict(
        session.execute(
            select(Job.queue, func.min(Job.created_at))
            .where(Job.status == JobStatus.QUEUED.value)
            .group_by(Job.queue)
        ).all()
    )
    pending = WebhookEvent.status == outbox.PENDING
    events_pending = session.scalar(select(func.count()).where(pending))
    events_due = session.scalar(select(func.count()).where(pending, WebhookEvent.next_attempt_at <= now))
    batches = [
        RunningBatch(row.id, row.jobs_done, row.jobs_total)
        for row in session.execute(
            select(Batch.id, Batch.jobs_done, Batch.jobs_total).where(Batch.status == BatchStatus.RUNNING.value)
        )
    ]
    return Snapshot(jobs, oldest, events_pending, events_due, batches, now)
