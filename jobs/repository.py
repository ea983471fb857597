"""Every read and write of job rows. Writes that race are conditional UPDATEs.

Terminal transitions happen exactly once (their UPDATE is conditional on the current status or
on the holder's lease token), and in the same transaction a job of a batch bumps the batch's
counter: the transaction that brings it to the total also finishes the batch.
"""
from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import asdict, dataclass, fields
from datetime import datetime, timedelta
from typing import Mapping, Protocol

from sqlalchemy import and_, case, func, insert, or_, select, update
from sqlalchemy.orm import Session

from jobs import completion, outbox, wakeups
from jobs.errors import JobError
from jobs.models import Batch, Job, JobLine, utcnow
from jobs.queue import SYNC_QUEUE
from jobs.status import BatchStatus, JobStatus, LineStatus
from jobs.validation import JobRequest, LineRequest


def create_job(
    session: Session,
    api_key_id: int,
    request: JobRequest,
    *,
    queue: str,
) -> Job:
    """Adds a queued job and its lines."""
    job, lines = _job_rows(api_key_id, request, queue=queue)
    session.execute(insert(Job), [job])
    session.execute(insert(JobLine), lines)
    return session.get(Job, job["id"])


class PlannedBatchJob(Protocol):
    """A job of a validated CSV (jobs.csv_batch.PlannedJob)."""

    output_name: str
    row_lines: tuple[int, ...]
    request: JobRequest


def create_batch(
    session: Session,
    api_key_id: int,
    jobs: list[PlannedBatchJob],
    *,
    queue: str,
    filename: str | None,
    webhook_url: str | None = None,
) -> Batch:
    """Adds a batch and all its queued jobs in bulk (one statement per table)."""
    batch = Batch(
        id=uuid.uuid4(),
        api_key_id=api_key_id,
        status=BatchStatus.RUNNING.value,
        jobs_total=len(jobs),
        jobs_done=0,
        filename=filename,
        webhook_url=webhook_url,
        created_at=utcnow(),
    )
    session.add(batch)
    session.flush()
    job_rows, line_rows = [], []
    for planned in jobs:
        job, lines = _job_rows(
            api_key_id, planned.request, queue=queue, batch_id=batch.id,
            output_name=planned.output_name, row_lines=planned.row_lines,
        )
        job_rows.append(job)
        line_rows.extend(lines)
    session.execute(insert(Job), job_rows)
    session.execute(insert(JobLine), line_rows)
    return batch


def _job_rows(
    api_key_id: int,
    request: JobRequest,
    *,
    queue: str,
    batch_id: uuid.UUID | None = None,
    output_name: str | None = None,
    row_lines: tuple[int, ...] | None = None,
) -> tuple[dict, list[dict]]:
    """The column values of a new queued job and of its lines."""
    now = utcnow()
    job_id = uuid.uuid4()
    job = dict(
        id=job_id,
        api_key_id=api_key_id,
        status=JobStatus.QUEUED.value,
        queue=queue,
        batch_id=batch_id,
        batch_line=row_lines[0] if row_lines else None,
        output_name=output_name,
        format=request.format,
        webhook_url=request.webhook_url,
        is_script=request.is_script,
        temperature=request.temperature,
        topk=request.topk,
        seed=request.seed,
        user_metadata=request.metadata,
        created_at=now,
        enqueued_at=now,
        attempts=0,
        cancel_requested=False,
        lines_total=len(request.lines),
        lines_done=0,
    )
    lines = [
        dict(
            job_id=job_id,
            index=index,
            batch_line=row_lines[index] if row_lines else None,
            status=LineStatus.PENDING.value,
            attempts=0,
            **asdict(line),
        )
        for index, line in enumerate(request.lines)
    ]
    return job, lines


def get_owned_job(session: Session, api_key_id: int, job_id: uuid.UUID) -> Job | None:
    """A job belongs to the key that created it; any other key sees nothing."""
    return session.scalar(select(Job).where(Job.id == job_id, Job.api_key_id == api_key_id))


def job_lines(session: Session, job_id: uuid.UUID) -> list[JobLine]:
    return list(session.scalars(select(JobLine).where(JobLine.job_id == job_id).order_by(JobLine.index)))


@dataclass(frozen=True)
class Cursor:
    created_at: datetime
    id: uuid.UUID


def list_jobs(
    session: Session,
    api_key_id: int,
    *,
    status: JobStatus | None,
    limit: int,
    after: Cursor | None,
) -> list[Job]:
    """Newest first; `after` continues from the last job of the previous page."""
    query = select(Job).where(Job.api_key_id == api_key_id)
    if status is not None:
        query = query.where(Job.status == status.value)
    if after is not None:
        query = query.where(
            or_(
                Job.created_at < after.created_at,
                and_(Job.created_at == after.created_at, Job.id < after.id),
            )
        )
    query = query.order_by(Job.created_at.desc(), Job.id.desc()).limit(limit)
    return list(session.scalars(query))


def cancel_job(session: Session, job: Job) -> bool:
    """Cancels a queued job now, or asks a running script to stop after its current line.

    False when the job can no longer be stopped (finished, or a running single text).
    """
    queued = session.execute(
        update(Job)
        .where(Job.id == job.id, Job.status == JobStatus.QUEUED.value)
        .values(status=JobStatus.CANCELED.value, finished_at=utcnow())
        .returning(*FINISHED)
    ).all()
    if queued:
        _finished(session, queued)
        return True
    running_script = session.execute(
        update(Job)
        .where(Job.id == job.id, Job.status == JobStatus.RUNNING.value, Job.is_script)
        .values(cancel_requested=True)
    )
    return running_script.rowcount == 1


@dataclass(frozen=True)
class LineResult:
    """What became of a line: also the columns of its row that a worker writes."""

    status: LineStatus
    attempts: int
    audio_key: str | None = None
    duration_ms: int | None = None
    audio_sha256: str | None = None
    error: str | None = None


@dataclass(frozen=True)
class LinePlan:
    """A line of a claimed job: what to render, and what an earlier attempt recorded."""

    index: int
    request: LineRequest
    result: LineResult | None  # None while pending


def _line_plan(line: JobLine) -> LinePlan:
    def columns(record: type) -> dict:
        return {f.name: getattr(line, f.name) for f in fields(record)}

    pending = line.status == LineStatus.PENDING.value
    result = None if pending else LineResult(**columns(LineResult) | {"status": LineStatus(line.status)})
    return LinePlan(line.index, LineRequest(**columns(LineRequest)), result)


@dataclass(frozen=True)
class Claim:
    """A worker's exclusive right to render a job until the lease expires."""

    job_id: uuid.UUID
    api_key_id: int
    queue: str
    batch_id: uuid.UUID | None
    submitted_at: datetime
    token: uuid.UUID
    attempt: int
    is_script: bool
    temperature: float
    topk: int
    format: str  # of the job's audio (a script's lines are always WAV)
    lines: tuple[LinePlan, ...]  # with what earlier attempts already rendered


def database_now(session: Session) -> datetime:
    """The database's clock: leases and backoffs are set and compared on one clock, whichever
    host writes them. (SQLite is a file on this host: this host's clock is its clock.)"""
    if session.get_bind().dialect.name == "postgresql":
        return session.scalar(select(func.now()))
    return utcnow()


def _due(now: datetime):
    """A queued job whose retry backoff, if any, is over."""
    return and_(Job.status == JobStatus.QUEUED.value, or_(Job.not_before.is_(None), Job.not_before <= now))


def claim_job(session: Session, job_id: uuid.UUID, *, lease_s: int, max_attempts: int) -> Claim | None:
    """Take a queued job whose backoff is over, or a running one whose worker was lost
    (expired lease).

    None when the job is finished, canceled, held by a live lease, not yet due or out of
    attempts: a redelivered message then does nothing.
    """
    now = database_now(session)
    token = uuid.uuid4()
    claimable = or_(_due(now), and_(Job.status == JobStatus.RUNNING.value, Job.lease_expires_at < now))
    result = session.execute(
        update(Job)
        .where(Job.id == job_id, claimable, Job.attempts < max_attempts)
        .values(
            status=JobStatus.RUNNING.value,
            lease_token=token,
            lease_expires_at=now + timedelta(seconds=lease_s),
            attempts=Job.attempts + 1,
            started_at=now,
        )
    )
    if result.rowcount != 1:
        return None
    job = session.get(Job, job_id, populate_existing=True)
    return Claim(
        job_id=job.id,
        api_key_id=job.api_key_id,
        queue=job.queue,
        batch_id=job.batch_id,
        submitted_at=job.created_at,
        token=token,
        attempt=job.attempts,
        is_script=job.is_script,
        temperature=job.temperature,
        topk=job.topk,
        format=job.format,
        lines=tuple(_line_plan(line) for line in job_lines(session, job_id)),
    )


def job_queue(session: Session, job_id: uuid.UUID) -> str | None:
    return session.scalar(select(Job.queue).where(Job.id == job_id))


def due_in_s(session: Session, job_id: uuid.UUID) -> float | None:
    """Seconds until a queued job's retry backoff is over; None when it is not waiting for one."""
    not_before = session.scalar(
        select(Job.not_before).where(Job.id == job_id, Job.status == JobStatus.QUEUED.value)
    )
    now = database_now(session)
    return (not_before - now).total_seconds() if not_before and not_before > now else None


def queued_text_jobs(session: Session, queue: str, limit: int, exclude: uuid.UUID) -> list[uuid.UUID]:
    """Up to `limit` other due queued single-text jobs to render in the same batch: those of
    the sync queue first (a request is waiting for them), then those of `queue`; oldest first.

    On PostgreSQL, rows another worker is reading are skipped rather than waited for; the
    conditional claim decides in any case.
    """
    query = (
        select(Job.id)
        .where(
            _due(database_now(session)),
            Job.queue.in_({SYNC_QUEUE, queue}),
            Job.is_script.is_(False),
            Job.id != exclude,
        )
        .order_by(case((Job.queue == SYNC_QUEUE, 0), else_=1), Job.created_at)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    return list(session.scalars(query))


def _held(claim: Claim):
    return and_(
        Job.id == claim.job_id,
        Job.status == JobStatus.RUNNING.value,
        Job.lease_token == claim.token,
    )


def renew_leases(session: Session, claims: list[Claim], lease_s: int) -> None:
    """Extends the leases of claims still held (a worker's heartbeat)."""
    expires = database_now(session) + timedelta(seconds=lease_s)
    for claim in claims:
        session.execute(update(Job).where(_held(claim)).values(lease_expires_at=expires))


def record_line(session: Session, claim: Claim, index: int, result: LineResult) -> bool | None:
    """Stores a finished line of a held job and counts it.

    Returns whether the owner asked to cancel, or None when the claim was lost.
    """
    held = session.execute(
        update(Job).where(_held(claim)).values(lines_done=Job.lines_done + 1).returning(Job.cancel_requested)
    ).first()
    if held is None:
        return None
    session.execute(
        update(JobLine)
        .where(JobLine.job_id == claim.job_id, JobLine.index == index)
        .values(**asdict(result) | {"status": result.status.value})
    )
    return held.cancel_requested


@dataclass(frozen=True)
class AudioResult:
    key: str
    duration_ms: int
    sample_rate: int
    bytes: int
    sha256: str


def complete_job(
    session: Session,
    claim: Claim,
    result: AudioResult | None,
    *,
    status: JobStatus = JobStatus.SUCCEEDED,
    manifest_key: str | None = None,
    error: tuple[JobError, str] | None = None,
) -> bool:
    """The one terminal transition of a rendered job; False if the claim was lost meanwhile.

    `status` is succeeded, partially_succeeded (some script lines failed: `error` names them)
    or canceled (a script stopped between lines).
    """
    code, message = (JobError(error[0]).value, error[1]) if error else (None, None)
    audio = (
        dict(
            audio_key=result.key,
            duration_ms=result.duration_ms,
            sample_rate=result.sample_rate,
            audio_bytes=result.bytes,
            audio_sha256=result.sha256,
        )
        if result
        else {}
    )
    return _terminate(
        session, claim, status=status.value, error_code=code, error_message=message, manifest_key=manifest_key, **audio
    )


def fail_job(session: Session, claim: Claim, code: JobError, message: str) -> bool:
    return _terminate(session, claim, status=JobStatus.FAILED.value, error_code=JobError(code).value, error_message=message)


def _terminate(session: Session, claim: Claim, **values) -> bool:
    """The terminal UPDATE of a held job, with its events and batch count; False if not held."""
    finished = session.execute(
        update(Job)
        .where(_held(claim))
        .values(finished_at=utcnow(), lease_token=None, lease_expires_at=None, **values)
        .returning(*FINISHED)
    ).all()
    _finished(session, finished)
    return bool(finished)


def release_job(
    session: Session, claim: Claim, code: JobError, message: str, *, delay_s: float, refund: bool = False
) -> bool:
    """Give a claimed job back to the queue after a transient failure, not to be claimed for
    `delay_s`. `refund`: this attempt made progress (a script that rendered lines), so it does
    not count."""
    now = database_now(session)
    outcome = session.execute(
        update(Job)
        .where(_held(claim))
        .values(
            status=JobStatus.QUEUED.value,
            enqueued_at=now,
            not_before=now + timedelta(seconds=delay_s) if delay_s > 0 else None,
            lease_token=None,
            lease_expires_at=None,
            error_code=JobError(code).value,
            error_message=message,
            attempts=Job.attempts - 1 if refund else Job.attempts,
        )
    )
    return outcome.rowcount == 1


# What a terminal UPDATE returns for _finished.
FINISHED = (Job.id, Job.api_key_id, Job.status, Job.webhook_url, Job.batch_id, Job.queue)


def _finished(session: Session, jobs) -> None:
    """In the transaction that made `jobs` terminal: their completion signals (sent after the
    commit), their webhook events, and their batches' counters; the update that brings a batch
    to its total closes it (exactly once)."""
    for job in jobs:
        completion.record_finished(session, job.id, job.queue)
        outbox.emit(session, job.api_key_id, job.id, outbox.JOB_EVENTS[job.status], job.webhook_url)
        if job.batch_id is None:
            continue
        done, total = session.execute(
            update(Batch)
            .where(Batch.id == job.batch_id)
            .values(jobs_done=Batch.jobs_done + 1)
            .returning(Batch.jobs_done, Batch.jobs_total)
        ).one()
        if done == total:
            batch = session.get(Batch, job.batch_id, populate_existing=True)
            batch.status = _batch_outcome(session, batch.id).value
            batch.finished_at = utcnow()
            outbox.emit(session, batch.api_key_id, batch.id, outbox.BATCH_COMPLETED, batch.webhook_url)


def _batch_outcome(session: Session, batch_id: uuid.UUID) -> BatchStatus:
    counts = batch_status_counts(session, batch_id)
    succeeded = counts.get(JobStatus.SUCCEEDED.value, 0)
    if succeeded == sum(counts.values()):
        return BatchStatus.SUCCEEDED
    if succeeded or counts.get(JobStatus.PARTIALLY_SUCCEEDED.value, 0):
        return BatchStatus.PARTIALLY_SUCCEEDED
    return BatchStatus.FAILED


def batch_status_counts(session: Session, batch_id: uuid.UUID) -> dict[str, int]:
    rows = session.execute(
        select(Job.status, func.count()).where(Job.batch_id == batch_id).group_by(Job.status)
    )
    return {status: count for status, count in rows}


@dataclass(frozen=True)
class SweepResult:
    wake_ups: list[wakeups.WakeUp]  # to publish after commit
    failed: list[uuid.UUID]


def sweep(
    session: Session, *, requeue_after_s: int, max_attempts: int, batch_size: int, waiting: Mapping[str, int]
) -> SweepResult:
    """Find jobs whose worker died, or whose wake-up message was lost.

    Running jobs with an expired lease go back to queued, with one wake-up per `batch_size`
    texts and per script; expired jobs that used all their attempts fail with `worker_lost`.
    Queued jobs get wake-ups by the rule of jobs.wakeups, given the messages `waiting` in each
    broker queue. The caller publishes the wake-ups after commit.
    """
    now = database_now(session)
    expired = and_(Job.status == JobStatus.RUNNING.value, Job.lease_expires_at < now)
    exhausted = session.execute(
        update(Job)
        .where(expired, Job.attempts >= max_attempts)
        .values(
            status=JobStatus.FAILED.value,
            finished_at=now,
            lease_token=None,
            lease_expires_at=None,
            error_code=JobError.WORKER_LOST.value,
            error_message=f"the worker rendering this job stopped responding {max_attempts} times",
        )
        .returning(*FINISHED)
    ).all()
    _finished(session, exhausted)
    reclaimed = session.execute(
        update(Job)
        .where(expired)
        .values(status=JobStatus.QUEUED.value, enqueued_at=now, lease_token=None, lease_expires_at=None)
        .returning(Job.id, Job.queue, Job.is_script)
    ).all()
    found = wakeups.wake_ups((wakeups.QueuedJob(*row) for row in reclaimed), batch_size)
    found += wakeups.missing_wake_ups(
        session, now=now, requeue_after_s=requeue_after_s, batch_size=batch_size, waiting=waiting,
        sent=Counter(wake_up.queue for wake_up in found),
    )
    return SweepResult(wake_ups=found, failed=[row.id for row in exhausted])
