"""The public JSON shape of a job, as GET /v1/jobs/{id} returns it."""
from __future__ import annotations

from datetime import datetime

from jobs.models import Job
from jobs.status import JobStatus


def job_resource(job: Job, audio_url: str) -> dict:
    succeeded = job.status == JobStatus.SUCCEEDED.value
    has_error = job.status == JobStatus.FAILED.value and job.error_code is not None
    return {
        "id": str(job.id),
        "status": job.status,
        "created_at": _timestamp(job.created_at),
        "started_at": _timestamp(job.started_at),
        "finished_at": _timestamp(job.finished_at),
        "attempts": job.attempts,
        "error": {"code": job.error_code, "message": job.error_message} if has_error else None,
        "result": {
            "audio_url": audio_url,
            "duration_ms": job.duration_ms,
            "sample_rate": job.sample_rate,
            "bytes": job.audio_bytes,
            "sha256": job.audio_sha256,
        }
        if succeeded
        else None,
        "metadata": job.user_metadata,
    }


def _timestamp(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def audio_key(job_id) -> str:
    return f"jobs/{job_id}/audio.wav"
