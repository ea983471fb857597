"""/v1/jobs: submit, poll, list, download and cancel synthesis jobs."""
from __future__ import annotations

import base64
import binascii
import json
import logging
import uuid
from datetime import datetime

from flask import g, jsonify, redirect, request, send_file, url_for

from api.errors import ApiError
from api.services import db, services
from jobs import repository
from jobs.models import Job
from jobs.queue import publish_render
from jobs.resource import job_resource
from jobs.status import JobStatus
from jobs.validation import InvalidField, parse_job_request

log = logging.getLogger(__name__)

DEFAULT_PAGE = 20
MAX_PAGE = 100


def submit_job():
    try:
        job_request = parse_job_request(
            _json_body(), max_text_chars=services().settings.max_text_chars
        )
    except InvalidField as exc:
        raise ApiError(422, "invalid_field", exc.message, exc.field) from None
    session = db()
    job = repository.create_job(session, g.api_key_id, job_request)
    session.commit()
    log.info("event=job_queued job_id=%s", job.id)
    # The row is committed first: if publishing fails, the sweeper publishes it later.
    try:
        publish_render(services().producer, job.id)
    except Exception:
        log.warning("event=publish_failed job_id=%s", job.id, exc_info=True)
    response = jsonify(_resource(job))
    response.status_code = 202
    response.headers["Location"] = url_for("get_job", job_id=job.id)
    return response


def get_job(job_id: uuid.UUID):
    return jsonify(_resource(_owned(job_id)))


def list_jobs():
    status = _status_filter(request.args.get("status"))
    limit = _limit(request.args.get("limit"))
    after = _decode_cursor(request.args.get("cursor"))
    page = repository.list_jobs(db(), g.api_key_id, status=status, limit=limit + 1, after=after)
    more = len(page) > limit
    page = page[:limit]
    return jsonify(
        {
            "jobs": [_resource(job) for job in page],
            "next_cursor": _encode_cursor(page[-1]) if more else None,
        }
    )


def get_audio(job_id: uuid.UUID):
    job = _owned(job_id)
    if job.status != JobStatus.SUCCEEDED.value:
        raise ApiError(409, "not_ready", f"the job is {job.status}; audio exists once it succeeded")
    store = services().store
    filename = f"{job.id}.wav"
    url = store.download_url(job.audio_key, filename)
    if url is not None:
        return redirect(url, code=302)
    return send_file(store.open(job.audio_key), mimetype="audio/wav", download_name=filename)


def cancel_job(job_id: uuid.UUID):
    job = _owned(job_id)
    session = db()
    canceled = repository.cancel_job(session, job.id)
    session.commit()
    if not canceled:
        session.refresh(job)
        raise ApiError(409, "not_cancelable", f"the job is {job.status}; only queued jobs can be canceled")
    log.info("event=job_canceled job_id=%s", job.id)
    session.refresh(job)
    return jsonify(_resource(job))


def _resource(job: Job) -> dict:
    return job_resource(job, url_for("get_audio", job_id=job.id, _external=True))


def _owned(job_id: uuid.UUID) -> Job:
    job = repository.get_owned_job(db(), g.api_key_id, job_id)
    if job is None:
        raise ApiError(404, "not_found", f"no job {job_id}")
    return job


def _json_body():
    if not request.is_json:
        raise ApiError(415, "unsupported_media_type", "send a JSON body with Content-Type: application/json")
    body = request.get_json(silent=True)
    if body is None:
        raise ApiError(400, "invalid_json", "the body is not valid JSON", "body")
    return body


def _status_filter(raw: str | None) -> JobStatus | None:
    if raw is None:
        return None
    try:
        return JobStatus(raw)
    except ValueError:
        allowed = ", ".join(s.value for s in JobStatus)
        raise ApiError(422, "invalid_field", f"must be one of {allowed}", "status") from None


def _limit(raw: str | None) -> int:
    if raw is None:
        return DEFAULT_PAGE
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_PAGE:
        raise ApiError(422, "invalid_field", f"must be an integer between 1 and {MAX_PAGE}", "limit")
    return int(raw)


def _encode_cursor(job: Job) -> str:
    raw = json.dumps([job.created_at.isoformat(), str(job.id)]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(raw: str | None) -> repository.Cursor | None:
    if raw is None:
        return None
    try:
        created_at, job_id = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
        return repository.Cursor(datetime.fromisoformat(created_at), uuid.UUID(job_id))
    except (ValueError, TypeError, binascii.Error):
        raise ApiError(422, "invalid_field", "is not a cursor this API returned", "cursor") from None
