"""Every read and write of job rows. Writes that race are conditional UPDATEs."""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session

from jobs.models import Job, utcnow
from jobs.status import JobStatus, sources_of
from jobs.validation import JobRequest


def create_job(session: Session, api_key_id: int, request: JobRequest) -> Job:
    now = utcnow()
    job = Job(
        id=uuid.uuid4(),
        api_key_id=api_key_id,
        status=JobStatus.QUEUED.value,
        text=request.text,
        speaker=request.speaker,
        max_audio_length_ms=request.max_audio_length_ms,
        temperature=request.temperature,
        topk=request.topk,
        seed=request.seed,
        user_metadata=request.metadata,
        created_at=now,
        enqueued_at=now,
        attempts=0,
    )
    session.add(job)
    session.flush()
    return job


def get_owned_job(session: Session, api_key_id: int, job_id: uuid.UUID) -> Job | None:
    """A job belongs to the key that created it; any other key sees nothing."""
    return session.scalar(select(Job).where(Job.id == job_id, Job.api_key_id == api_key_id))


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


def cancel_job(session: Session, job_id: uuid.UUID) -> bool:
    """Cancel a job that no worker has claimed; False when it has already moved on."""
    result = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status.in_(sources_of(JobStatus.CANCELED)))
        .values(status=JobStatus.CANCELED.value, finished_at=utcnow())
    )
    return result.rowcount == 1


@dataclass(frozen=True)
class Claim:
    """A worker's exclusive right to render a job until the lease expires."""

    job_id: uuid.UUID
    token: uuid.UUID
    attempt: int
    text: str
    speaker: int
    max_audio_length_ms: int
    temperature: float
    topk: int
    seed: int


def claim_job(session: Session, job_id: uuid.UUID, *, lease_s: int, max_attempts: int) -> Claim | None:
    """Take a queued job, or a running one whose worker was lost (expired lease).

    None when the job is finished, canceled, held by a live lease or out of attempts: a
    redelivered message then does nothing.
    """
    now = utcnow()
    token = uuid.uuid4()
    claimable = or_(
        Job.status == JobStatus.QUEUED.value,
        and_(Job.status == JobStatus.RUNNING.value, Job.lease_expires_at < now),
    )
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
        token=token,
        attempt=job.attempts,
        text=job.text,
        speaker=job.speaker,
        max_audio_length_ms=job.max_audio_length_ms,
        temperature=job.temperature,
        topk=job.topk,
        seed=job.seed,
    )


@dataclass(frozen=True)
class AudioResult:
    key: str
    duration_ms: int
    sample_rate: int
    bytes: int
    sha256: str


def _held(claim: Claim):
    return and_(
        Job.id == claim.job_id,
        Job.status == JobStatus.RUNNING.value,
        Job.lease_token == claim.token,
    )


def complete_job(session: Session, claim: Claim, result: AudioResult) -> bool:
    """The one terminal transition to succeeded; False if the claim was lost meanwhile."""
    outcome = session.execute(
        update(Job)
        .where(_held(claim))
        .values(
            status=JobStatus.SUCCEEDED.value,
            finished_at=utcnow(),
            lease_token=None,
            lease_expires_at=None,
            error_code=None,
            error_message=None,
            audio_key=result.key,
            duration_ms=result.duration_ms,
            sample_rate=result.sample_rate,
            audio_bytes=result.bytes,
            audio_sha256=result.sha256,
        )
    )
    return outcome.rowcount == 1


def fail_job(session: Session, claim: Claim, code: str, message: str) -> bool:
    outcome = session.execute(
        update(Job)
        .where(_held(claim))
        .values(
            status=JobStatus.FAILED.value,
            finished_at=utcnow(),
            lease_token=None,
            lease_expires_at=None,
            error_code=code,
            error_message=message,
        )
    )
    return outcome.rowcount == 1


def release_job(session: Session, claim: Claim, code: str, message: str) -> bool:
    """Give a claimed job back to the queue after a transient failure."""
    outcome = session.execute(
        update(Job)
        .where(_held(claim))
        .values(
            status=JobStatus.QUEUED.value,
            enqueued_at=utcnow(),
            lease_token=None,
            lease_expires_at=None,
            error_code=code,
            error_message=message,
        )
    )
    return outcome.rowcount == 1


@dataclass(frozen=True)
class SweepResult:
    requeued: list[uuid.UUID]
    failed: list[uuid.UUID]


def sweep(session: Session, *, requeue_after_s: int, max_attempts: int) -> SweepResult:
    """Find jobs whose wake-up message was lost, or whose worker died.

    Queued jobs not published for `requeue_after_s` and running jobs with an expired lease
    go (back) to queued and are returned for the caller to publish after commit; expired
    jobs that used all their attempts fail with `worker_lost`.
    """
    now = utcnow()
    expired = and_(Job.status == JobStatus.RUNNING.value, Job.lease_expires_at < now)
    exhausted = list(
        session.scalars(
            update(Job)
            .where(expired, Job.attempts >= max_attempts)
            .values(
                status=JobStatus.FAILED.value,
                finished_at=now,
                lease_token=None,
                lease_expires_at=None,
                error_code="worker_lost",
                error_message=f"the worker rendering this job stopped responding {max_attempts} times",
            )
            .returning(Job.id)
        )
    )
    stale_queued = and_(
        Job.status == JobStatus.QUEUED.value,
        Job.enqueued_at < now - timedelta(seconds=requeue_after_s),
    )
    requeued = list(
        session.scalars(
            update(Job)
            .where(or_(stale_queued, expired))
            .values(
                status=JobStatus.QUEUED.value,
                enqueued_at=now,
                lease_token=None,
                lease_expires_at=None,
            )
            .returning(Job.id)
        )
    )
    return SweepResult(requeued=requeued, failed=exhausted)
