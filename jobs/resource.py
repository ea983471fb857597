"""The public JSON shapes of jobs and batches (as GET returns them, and as webhooks send them),
their links, and the object keys of their outputs."""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from jobs.formats import with_extension
from jobs.models import Batch, Job
from jobs.retention import batch_expires_at, expires_at
from jobs.status import JobStatus

WITH_RESULT = frozenset({JobStatus.SUCCEEDED.value, JobStatus.PARTIALLY_SUCCEEDED.value})
WITH_ERROR = frozenset({JobStatus.FAILED.value, JobStatus.PARTIALLY_SUCCEEDED.value})


@dataclass(frozen=True)
class JobLinks:
    """Where a client downloads a job's outputs (through the API, which checks the key)."""

    audio_url: str
    manifest_url: str
    line_audio_urls: list[str]


def job_links(job: Job, base_url: str) -> JobLinks:
    """`base_url`: the API's public address, e.g. https://tts.example.com."""
    job_url = f"{base_url}/v1/jobs/{job.id}"
    return JobLinks(
        audio_url=f"{job_url}/audio",
        manifest_url=f"{job_url}/manifest",
        line_audio_urls=[f"{job_url}/lines/{index}/audio" for index in range(job.lines_total)]
        if job.is_script
        else [],
    )


def batch_resource(batch: Batch, counts: dict[str, int], base_url: str, ttl: timedelta | None) -> dict:
    """`ttl`: RESULT_TTL_HOURS (None: outputs are kept forever)."""
    batch_url = f"{base_url}/v1/batches/{batch.id}"
    return {
        "id": str(batch.id),
        "status": batch.status,
        "filename": batch.filename,
        "created_at": timestamp(batch.created_at),
        "finished_at": timestamp(batch.finished_at),
        "expires_at": timestamp(batch_expires_at(batch, ttl)),
        "jobs_total": batch.jobs_total,
        "jobs_done": batch.jobs_done,
        "progress": round(batch.jobs_done / batch.jobs_total, 4) if batch.jobs_total else 1.0,
        "counts": counts,
        "manifest_url": f"{batch_url}/manifest",
        "archive_url": f"{batch_url}/archive",
    }


def job_resource(job: Job, base_url: str, ttl: timedelta | None) -> dict:
    """`ttl`: RESULT_TTL_HOURS (None: outputs are kept forever)."""
    links = job_links(job, base_url)
    result = None
    if job.status in WITH_RESULT:
        result = {
            "audio_url": links.audio_url,
            "duration_ms": job.duration_ms,
            "sample_rate": job.sample_rate,
            "bytes": job.audio_bytes,
            "sha256": job.audio_sha256,
        }
        if job.is_script:
            result |= {"manifest_url": links.manifest_url, "line_audio_urls": links.line_audio_urls}
    has_error = job.status in WITH_ERROR and job.error_code is not None
    return {
        "id": str(job.id),
        "type": "script" if job.is_script else "text",
        "format": job.format,
        "status": job.status,
        "created_at": timestamp(job.created_at),
        "started_at": timestamp(job.started_at),
        "finished_at": timestamp(job.finished_at),
        "expires_at": timestamp(expires_at(job, ttl)),
        "attempts": job.attempts,
        "lines_done": job.lines_done,
        "lines_total": job.lines_total,
        "error": {"code": job.error_code, "message": job.error_message} if has_error else None,
        "result": result,
        "metadata": job.user_metadata,
        "batch_id": str(job.batch_id) if job.batch_id else None,
    }


def timestamp(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


# Each claim of a job writes under a prefix of its own, and the rows name the objects: a worker
# that lost its lease (and renders on, unaware) can never change the bytes a finished job names.
def _claim_prefix(job_id: uuid.UUID, claim_token: uuid.UUID) -> str:
    return f"jobs/{job_id}/{claim_token.hex}"


def audio_key(job_id: uuid.UUID, claim_token: uuid.UUID, audio_format: str) -> str:
    """A text job's audio, or a script's stitched master, in the job's format."""
    return with_extension(f"{_claim_prefix(job_id, claim_token)}/audio", audio_format)


def line_key(job_id: uuid.UUID, claim_token: uuid.UUID, index: int) -> str:
    """A script line's WAV: always WAV, as it is the context of the lines after it."""
    return f"{_claim_prefix(job_id, claim_token)}/lines/{index:03d}.wav"


def manifest_key(job_id: uuid.UUID, claim_token: uuid.UUID) -> str:
    return f"{_claim_prefix(job_id, claim_token)}/manifest.json"
