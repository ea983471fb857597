"""Synchronous synthesis: an ordinary job (listed, stored, pollable) on the sync queue, which
the request waits for.

At most SYNC_MAX_WAITING requests of an API process wait at once; more get 503 with
Retry-After before anything is stored. A request waits up to SYNC_WAIT_S, woken by the job's
completion signal (jobs.completion) and re-reading the SQL row; past it, 504 names the job,
which keeps running, and Location polls it. No database connection is held while it waits.
"""
from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass

from flask import g, url_for

from api.errors import RETRY_AFTER_S, ApiError, ErrorCode
from api.jobs import publish
from api.services import db, services
from jobs import repository
from jobs.errors import JobError
from jobs.models import Job
from jobs.queue import SYNC_QUEUE
from jobs.status import JobStatus
from jobs.validation import JobRequest

log = logging.getLogger(__name__)

UNFINISHED = frozenset({JobStatus.QUEUED.value, JobStatus.RUNNING.value})
# OpenAI's clients retry 5xx answers by default: a retry would render the text again as a new job.
NO_RETRY = {"x-should-retry": "false"}


@dataclass(frozen=True)
class Rendered:
    job: Job
    audio: bytes  # the stored file, in the job's format


def render_and_wait(job_request: JobRequest) -> Rendered:
    """Submits `job_request` on the sync queue and waits for its audio (raises ApiError)."""
    settings = services().settings
    slots = services().sync_slots
    if not slots.acquire(blocking=False):
        raise ApiError(
            ErrorCode.BUSY,
            f"{settings.sync_max_waiting} synchronous requests are already waiting; retry shortly, "
            "or submit with POST /v1/jobs and poll",
            retry_after_s=RETRY_AFTER_S,
        )
    try:
        session = db()
        job = repository.create_job(session, g.api_key_id, job_request, queue=SYNC_QUEUE)
        session.commit()
        session.close()  # nothing of the request's session is held while it waits
        log.info("event=job_queued job_id=%s queue=%s", job.id, SYNC_QUEUE)
        publish([job.id], SYNC_QUEUE)
        job = _wait(job.id, time.monotonic() + settings.sync_wait_s)
    finally:
        slots.release()
    return Rendered(job, _outcome(job, settings.sync_wait_s))


def _wait(job_id: uuid.UUID, deadline: float) -> Job:
    """The job once finished, or as it is at `deadline`."""
    signal = services().completions
    pauses = signal.pauses()
    while True:
        with services().sessions() as session:
            job = session.get(Job, job_id)
        if job is None:
            raise ApiError(ErrorCode.NOT_FOUND, f"job {job_id} was deleted while this request waited", headers=NO_RETRY)
        remaining = deadline - time.monotonic()
        if job.status not in UNFINISHED or remaining <= 0:
            return job
        signal.wait(job_id, min(next(pauses), remaining))


def _outcome(job: Job, waited_s: float) -> bytes:
    """The audio of a succeeded job; an ApiError for any other."""
    location = {"Location": url_for("get_job", job_id=job.id)}
    if job.status in UNFINISHED:
        raise ApiError(
            ErrorCode.TIMEOUT,
            f"job {job.id} is still {job.status} after {waited_s:g} s; it keeps running: poll GET /v1/jobs/{job.id}",
            headers=location | NO_RETRY,
        )
    if job.status == JobStatus.SUCCEEDED.value:
        with services().store.open(job.audio_key) as stream:
            return stream.read()
    if job.status == JobStatus.CANCELED.value:
        raise ApiError(ErrorCode.CANCELED, f"job {job.id} was canceled", headers=location | NO_RETRY)
    if job.error_code == JobError.INVALID_INPUT:  # the engine refused the text: the caller's to fix
        raise ApiError(ErrorCode.INVALID_INPUT, f"job {job.id}: {job.error_message}", headers=location | NO_RETRY)
    raise ApiError(
        ErrorCode.JOB_FAILED, f"job {job.id} failed: {job.error_code}: {job.error_message}",
        headers=location | NO_RETRY,
    )
