"""/v1/jobs: submit, poll, list, download and cancel synthesis jobs."""
from __future__ import annotations

import base64
import binascii
import json
import logging
import uuid
from datetime import datetime

from flask import g, jsonify, redirect, request, send_file, url_for

from api import media
from api.errors import ApiError
from api.services import db, services
from jobs import outbox, repository
from jobs.formats import WAV, audio_format, with_extension
from jobs.models import Job, JobLine
from jobs.queue import RENDER_QUEUE, publish_render
from jobs.resource import WITH_RESULT, job_resource
from jobs.status import JobStatus, LineStatus
from jobs.validation import InvalidField, JobRequest, parse_job_request
from jobs.voices import find_voice
from webhooks import UnsafeUrl, resolver_within, vet_url

log = logging.getLogger(__name__)

DEFAULT_PAGE = 20
MAX_PAGE = 100


def submit_job():
    job_request = parse_request(json_body(), check_webhook_url=check_webhook_url)
    session = db()
    job = repository.create_job(session, g.api_key_id, job_request, queue=RENDER_QUEUE)
    session.commit()
    log.info("event=job_queued job_id=%s lines=%d", job.id, job.lines_total)
    publish([job.id])
    return accepted(_resource(job), url_for("get_job", job_id=job.id))


def parse_request(body, **options) -> JobRequest:
    """A job request by the key (its voices), or ApiError 422 naming the bad field."""
    try:
        return parse_job_request(
            body,
            max_text_chars=services().settings.max_text_chars,
            voice_exists=lambda name: find_voice(db(), g.api_key_id, name) is not None,
            **options,
        )
    except InvalidField as exc:
        raise ApiError(422, "invalid_field", exc.message, exc.field) from None


def accepted(resource: dict, location: str):
    """202: the work is stored and queued; `location` is where to poll it."""
    response = jsonify(resource)
    response.status_code = 202
    response.headers["Location"] = location
    return response


def get_job(job_id: uuid.UUID):
    return jsonify(_resource(owned_job(job_id)))


def list_jobs():
    status = _status_filter(request.args.get("status"))
    limit = page_limit(request.args.get("limit"))
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
    job = _finished(job_id)
    return download(job.audio_key, _audio_name(job), audio_format(job.format).media_type)


def get_audio_url(job_id: uuid.UUID):
    """A short-lived URL of the audio that needs no bearer header (for `<audio src>`)."""
    job = _finished(job_id)
    return jsonify(media.playable_url(job.audio_key, _audio_name(job), base_url()))


def get_manifest(job_id: uuid.UUID):
    job = _finished(job_id)
    if job.manifest_key is None:
        raise ApiError(404, "not_found", "only script jobs have a manifest")
    return download(job.manifest_key, f"{job.id}-manifest.json", "application/json")


def get_line_audio(job_id: uuid.UUID, index: int):
    line = _rendered_line(job_id, index)
    return download(line.audio_key, _line_audio_name(line), WAV.media_type)


def get_line_audio_url(job_id: uuid.UUID, index: int):
    line = _rendered_line(job_id, index)
    return jsonify(media.playable_url(line.audio_key, _line_audio_name(line), base_url()))


def cancel_job(job_id: uuid.UUID):
    job = owned_job(job_id)
    session = db()
    stopped = repository.cancel_job(session, job)
    session.commit()
    session.refresh(job)
    if not stopped:
        raise ApiError(
            409, "not_cancelable",
            f"the job is {job.status}; queued jobs and running scripts can be canceled",
        )
    log.info("event=job_cancel job_id=%s status=%s", job.id, job.status)
    # A running script stops after its current line: 202 until the worker has stopped it.
    return jsonify(_resource(job)), 200 if job.status == JobStatus.CANCELED.value else 202


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


def check_webhook_url(url: str) -> None:
    """Refuses URLs the service will not call (raises InvalidField naming webhook_url)."""
    settings = services().settings
    try:
        vet_url(url, allow_private=settings.webhook_allow_private, resolve=resolver_within(settings.dns_timeout_s))
    except UnsafeUrl as exc:
        raise InvalidField("webhook_url", str(exc)) from None
    if outbox.is_disabled(db(), g.api_key_id, url):
        raise InvalidField("webhook_url", "this URL answered 410 Gone and is disabled for your key")


def _resource(job: Job) -> dict:
    return job_resource(job, base_url())


def _finished(job_id: uuid.UUID) -> Job:
    job = owned_job(job_id)
    if job.status not in WITH_RESULT:
        raise ApiError(409, "not_ready", f"the job is {job.status}; outputs exist once it succeeded")
    return job


def _rendered_line(job_id: uuid.UUID, index: int) -> JobLine:
    """A line of the key's job whose audio is stored (lines are available as they finish)."""
    job = owned_job(job_id)
    line = db().get(JobLine, (job.id, index))
    if line is None:
        raise ApiError(404, "not_found", f"the job has no line {index}")
    if line.status != LineStatus.SUCCEEDED.value:
        raise ApiError(409, "not_ready", f"line {index} is {line.status}")
    return line


def _audio_name(job: Job) -> str:
    return job.output_name or with_extension(str(job.id), job.format)


def _line_audio_name(line: JobLine) -> str:
    return with_extension(f"{line.job_id}-line-{line.index:03d}", WAV.name)


def owned_job(job_id: uuid.UUID) -> Job:
    job = repository.get_owned_job(db(), g.api_key_id, job_id)
    if job is None:
        raise ApiError(404, "not_found", f"no job {job_id}")
    return job


def json_body():
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


def page_limit(raw: str | None) -> int:
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
