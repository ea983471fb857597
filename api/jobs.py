"""/v1/jobs: submit, poll, list, download and cancel synthesis jobs."""
from __future__ import annotations

import logging
import uuid
from datetime import datetime

from flask import g, jsonify, redirect, request, send_file, url_for

from api import media
from api.deletion import delete_outputs_and_rows
from api.errors import ApiError, ErrorCode
from api.inputs import takes
from api.services import db, services
from jobs import repository, retention
from jobs.formats import WAV, audio_format, with_extension
from jobs.inputs import JobListQuery, LinePath, encode_cursor
from jobs.models import Job, JobLine, utcnow
from jobs.queue import RENDER_QUEUE, publish_render
from jobs.resource import WITH_RESULT, job_resource, timestamp
from jobs.status import JobStatus, LineStatus
from jobs.validation import JobBody, job_request

log = logging.getLogger(__name__)


@takes(body=JobBody)
def submit_job(body: JobBody):
    session = db()
    job = repository.create_job(session, g.api_key_id, job_request(body.root), queue=RENDER_QUEUE)
    session.commit()
    log.info("event=job_queued job_id=%s lines=%d", job.id, job.lines_total)
    publish([job.id])
    return accepted(_resource(job), url_for("get_job", job_id=job.id))


def accepted(resource: dict, location: str):
    """202: the work is stored and queued; `location` is where to poll it."""
    response = jsonify(resource)
    response.status_code = 202
    response.headers["Location"] = location
    return response


def get_job(job_id: uuid.UUID):
    return jsonify(_resource(owned_job(job_id)))


@takes(query=JobListQuery)
def list_jobs(query: JobListQuery):
    status = JobStatus(query.status) if query.status else None
    page = repository.list_jobs(db(), g.api_key_id, status=status, limit=query.limit + 1, after=query.cursor)
    more = len(page) > query.limit
    page = page[:query.limit]
    return jsonify(
        {
            "jobs": [_resource(job) for job in page],
            "next_cursor": encode_cursor(page[-1].created_at, page[-1].id) if more else None,
        }
    )


def get_audio(job_id: uuid.UUID):
    job = _finished(job_id)
    return download(_kept(job, job.audio_key), _audio_name(job), audio_format(job.format).media_type)


def get_audio_url(job_id: uuid.UUID):
    """A short-lived URL of the audio that needs no bearer header (for `<audio src>`)."""
    job = _finished(job_id)
    return jsonify(media.playable_url(_kept(job, job.audio_key), _audio_name(job), base_url()))


def get_manifest(job_id: uuid.UUID):
    job = _finished(job_id)
    if not job.is_script:
        raise ApiError(ErrorCode.NOT_FOUND, "only script jobs have a manifest")
    return download(_kept(job, job.manifest_key), f"{job.id}-manifest.json", "application/json")


@takes(path=LinePath)
def get_line_audio(job_id: uuid.UUID, index: int):
    job, line = _rendered_line(job_id, index)
    return download(_kept(job, line.audio_key), _line_audio_name(line), WAV.media_type)


@takes(path=LinePath)
def get_line_audio_url(job_id: uuid.UUID, index: int):
    job, line = _rendered_line(job_id, index)
    return jsonify(media.playable_url(_kept(job, line.audio_key), _line_audio_name(line), base_url()))


def cancel_job(job_id: uuid.UUID):
    job = owned_job(job_id)
    session = db()
    stopped = repository.cancel_job(session, job)
    session.commit()
    session.refresh(job)
    if not stopped:
        raise ApiError(
            ErrorCode.NOT_CANCELABLE, f"the job is {job.status}; queued jobs and running scripts can be canceled"
        )
    log.info("event=job_cancel job_id=%s status=%s", job.id, job.status)
    # A running script stops after its current line: 202 until the worker has stopped it.
    return jsonify(_resource(job)), 200 if job.status == JobStatus.CANCELED.value else 202


def delete_job(job_id: uuid.UUID):
    """Deletes a job that is not running, with its outputs (see api.deletion). A queued job is
    deleted, not canceled: no event is sent for it, and the worker that takes its message finds
    nothing to do. A job of a batch goes only with its batch, whose counts, manifest and
    archive account for every row of the file."""
    job = owned_job(job_id)
    if job.batch_id is not None:
        raise ApiError(
            ErrorCode.IN_BATCH,
            f"the job belongs to batch {job.batch_id}; delete the batch (DELETE /v1/batches/{job.batch_id})",
        )
    delete_outputs_and_rows(Job.id == job.id, location=url_for("get_job", job_id=job.id))
    log.info("event=job_deleted job_id=%s", job_id)
    return "", 204


def publish(job_ids: list[uuid.UUID], queue: str = RENDER_QUEUE) -> None:
    """Wake workers for committed jobs; if publishing fails, the sweeper publishes them later."""
    for job_id in job_ids:
        try:
            publish_render(services().producer, job_id, queue)
        except Exception:
            log.warning("event=publish_failed job_id=%s", job_id, exc_info=True)
            return


def download(key: str, filename: str, mimetype: str):
    """A redirect to a presigned URL, or the object streamed from the local store."""
    store = services().store
    url = store.download_url(key, filename)
    if url is not None:
        return redirect(url, code=302)
    return send_file(store.open(key), mimetype=mimetype, download_name=filename)


def base_url() -> str:
    """The API's public address: PUBLIC_API_URL, or the one this request came to."""
    return services().settings.public_api_url or request.host_url.rstrip("/")


def _resource(job: Job) -> dict:
    return job_resource(job, base_url(), services().settings.result_ttl)


def _finished(job_id: uuid.UUID) -> Job:
    job = owned_job(job_id)
    if job.status not in WITH_RESULT:
        raise ApiError(ErrorCode.NOT_READY, f"the job is {job.status}; outputs exist once it succeeded")
    return job


def _rendered_line(job_id: uuid.UUID, index: int) -> tuple[Job, JobLine]:
    """A line of the key's job that was rendered (lines are available as they finish)."""
    job = owned_job(job_id)
    line = db().get(JobLine, (job.id, index))
    if line is None:
        raise ApiError(ErrorCode.NOT_FOUND, f"the job has no line {index}")
    if line.status != LineStatus.SUCCEEDED.value:
        raise ApiError(ErrorCode.NOT_READY, f"line {index} is {line.status}")
    return job, line


def _kept(job: Job, key: str | None) -> str:
    """`key`, the object of an output of `job`; 410 once RESULT_TTL_HOURS expired it."""
    expires_at = retention.expires_at(job, services().settings.result_ttl)
    if key is None or retention.is_past(expires_at, utcnow()):
        raise expired("the job's", expires_at)
    return key


def _audio_name(job: Job) -> str:
    return job.output_name or with_extension(str(job.id), job.format)


def _line_audio_name(line: JobLine) -> str:
    return with_extension(f"{line.job_id}-line-{line.index:03d}", WAV.name)


def expired(whose: str, expires_at: datetime | None) -> ApiError:
    when = f" at {timestamp(expires_at)}" if expires_at else ""
    return ApiError(
        ErrorCode.EXPIRED,
        f"{whose} outputs expired{when}: they are kept RESULT_TTL_HOURS after the job or batch finished",
    )


def owned_job(job_id: uuid.UUID) -> Job:
    job = repository.get_owned_job(db(), g.api_key_id, job_id)
    if job is None:
        raise ApiError(ErrorCode.NOT_FOUND, f"no job {job_id}")
    return job
