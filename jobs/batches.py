"""Batches: reading a batch, its counts and its rows for the manifest."""
from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from jobs.models import Batch, Job, JobLine


def get_owned_batch(session: Session, api_key_id: int, batch_id: uuid.UUID) -> Batch | None:
    return session.scalar(select(Batch).where(Batch.id == batch_id, Batch.api_key_id == api_key_id))


def list_batches(session: Session, api_key_id: int, limit: int) -> list[Batch]:
    """The key's newest batches first."""
    query = (
        select(Batch)
        .where(Batch.api_key_id == api_key_id)
        .order_by(Batch.created_at.desc(), Batch.id.desc())
        .limit(limit)
    )
    return list(session.scalars(query))


@dataclass(frozen=True)
class ManifestRow:
    """One input row of the CSV and what became of it."""

    line: int
    job: Job
    script_line: JobLine | None  # the row's line, when it belongs to a script job


def manifest_rows(session: Session, batch_id: uuid.UUID) -> list[ManifestRow]:
    jobs = {job.id: job for job in session.scalars(select(Job).where(Job.batch_id == batch_id))}
    lines = session.scalars(
        select(JobLine).join(Job).where(Job.batch_id == batch_id).order_by(JobLine.batch_line)
    )
    return [
        ManifestRow(line.batch_line, jobs[line.job_id], line if jobs[line.job_id].is_script else None)
        for line in lines
    ]


def job_ids_by_kind(session: Session, batch_id: uuid.UUID) -> tuple[list[uuid.UUID], list[uuid.UUID]]:
    """(text job ids, script job ids) of a batch, each in CSV order."""
    rows = session.execute(
        select(Job.id, Job.is_script).where(Job.batch_id == batch_id).order_by(Job.batch_line)
    ).all()
    return [r.id for r in rows if not r.is_script], [r.id for r in rows if r.is_script]
