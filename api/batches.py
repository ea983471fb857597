"""/v1/batches: bulk CSV uploads, their progress, manifest and zip archive."""
from __future__ import annotations

import csv
import io
import itertools
import logging
import uuid
import zipfile
from typing import Iterator

from flask import Response, g, jsonify, request, stream_with_context, url_for

from api.deletion import delete_outputs_and_rows
from api.errors import ApiError, ErrorCode
from api.inputs import takes
from api.jobs import accepted, base_url, expired, publish
from api.services import db, services
from jobs import batches, repository, retention
from jobs.csv_batch import MAX_CSV_BYTES, parse_batch_csv
from jobs.formats import WAV, audio_format, with_extension
from jobs.inputs import BatchListQuery, BatchOptions, BatchUpload, ManifestQuery
from jobs.models import Batch, Job, utcnow
from jobs.queue import BATCH_QUEUE
from jobs.resource import WITH_RESULT, batch_resource, job_links
from jobs.status import LineStatus
from jobs.voices import find_voice

log = logging.getLogger(__name__)

MANIFEST_COLUMNS = (
    "line", "output_name", "job_id", "script_line", "status", "audio_url", "duration_ms", "sha256", "error",
)
ARCHIVE_CHUNK = 1024 * 1024
MAX_UPLOAD_BYTES = MAX_CSV_BYTES + 64 * 1024  # the file plus multipart framing


@takes(query=BatchOptions, form=BatchUpload, raw_body="text/csv", max_body_bytes=MAX_UPLOAD_BYTES)
def create_batch(query: BatchOptions, form: BatchUpload | None):
    if form is not None:
        data, filename, webhook_url = form.file.data, form.file.filename, form.webhook_url or query.webhook_url
    elif request.mimetype == "text/csv":
        data, filename, webhook_url = request.get_data(), None, query.webhook_url
    else:
        raise ApiError(
            ErrorCode.UNSUPPORTED_MEDIA_TYPE, "send the CSV as text/csv or as multipart/form-data field 'file'"
        )
    session = db()
    plan = parse_batch_csv(  # CsvRejected: 422 listing every problem (api.errors)
        data,
        max_text_chars=services().settings.max_text_chars,
        voice_exists=lambda name: find_voice(session, g.api_key_id, name) is not None,
    )
    summary = {
        "rows": plan.rows,
        "jobs": len(plan.jobs),
        "scripts": sum(1 for job in plan.jobs if job.script_id is not None),
    }
    if query.validate_only:
        return jsonify({"valid": True, **summary})

    batch = repository.create_batch(
        session, g.api_key_id, list(plan.jobs), queue=BATCH_QUEUE, filename=filename, webhook_url=webhook_url
    )
    session.commit()
    log.info("event=batch_queued batch_id=%s jobs=%d rows=%d", batch.id, len(plan.jobs), plan.rows)
    publish(_wake_ups(batch.id), queue=BATCH_QUEUE)
    return accepted(_resource(batch), url_for("get_batch", batch_id=batch.id))


@takes(query=BatchListQuery)
def list_batches(query: BatchListQuery):
    """The key's newest batches (`limit`, 20 by default)."""
    page = batches.list_batches(db(), g.api_key_id, query.limit)
    return jsonify({"batches": [_resource(batch) for batch in page]})


def get_batch(batch_id: uuid.UUID):
    return jsonify(_resource(_owned(batch_id)))


@takes(query=ManifestQuery)
def get_batch_manifest(batch_id: uuid.UUID, query: ManifestQuery):
    batch = _kept(batch_id)
    rows = [_manifest_entry(row) for row in batches.manifest_rows(db(), batch.id)]
    if query.format == "csv":
        return Response(_csv(rows), mimetype="text/csv")
    return jsonify({"batch_id": str(batch.id), "status": batch.status, "rows": rows})


def get_batch_archive(batch_id: uuid.UUID):
    """A zip streamed from storage: every rendered file, named by its output name, plus the manifest."""
    batch = _kept(batch_id)
    rows = batches.manifest_rows(db(), batch.id)
    entries = [_manifest_entry(row) for row in rows]
    files = []  # (name in the zip, object key)
    for row in rows:
        job, line = row.job, row.script_line
        if (line is None or line.index == 0) and job.status in WITH_RESULT:
            files.append((job.output_name, job.audio_key))  # a text's audio, a script's master
        if line is not None and line.status == LineStatus.SUCCEEDED.value:
            stem = job.output_name.removesuffix(f".{audio_format(job.format).extension}")
            files.append((with_extension(f"{stem}/line-{line.index:03d}", WAV.name), line.audio_key))
    if any(key is None for _, key in files):  # cleared under a shorter RESULT_TTL_HOURS than today's
        raise expired("the batch's", None)
    db().close()  # streaming may take long: leave no transaction idle meanwhile
    chunks = _zip(services().store, files, _csv(entries), batch.id)
    # The first object is read here, so a store that is down answers 503, not a broken 200.
    first = next(chunks)
    response = Response(stream_with_context(itertools.chain([first], chunks)), mimetype="application/zip")
    response.headers["Content-Disposition"] = f'attachment; filename="batch-{batch.id}.zip"'
    return response


def delete_batch(batch_id: uuid.UUID):
    """Deletes a batch with its jobs and their outputs once none of its jobs runs (see
    api.deletion); its queued jobs are deleted, not canceled, and no event is sent."""
    batch = _owned(batch_id)
    delete_outputs_and_rows(
        Job.batch_id == batch.id, location=url_for("get_batch", batch_id=batch.id), batch_id=batch.id
    )
    log.info("event=batch_deleted batch_id=%s", batch_id)
    return "", 204


def _wake_ups(batch_id: uuid.UUID) -> list[uuid.UUID]:
    """One message per GPU batch of texts, and one per script: each wakes a worker that claims
    as many queued texts as it can render at once."""
    texts, scripts = batches.job_ids_by_kind(db(), batch_id)
    size = services().settings.worker_batch_size
    return texts[::size] + scripts


def _owned(batch_id: uuid.UUID) -> Batch:
    batch = batches.get_owned_batch(db(), g.api_key_id, batch_id)
    if batch is None:
        raise ApiError(ErrorCode.NOT_FOUND, f"no batch {batch_id}")
    return batch


def _kept(batch_id: uuid.UUID) -> Batch:
    """The key's batch, or 410 once RESULT_TTL_HOURS expired its outputs."""
    batch = _owned(batch_id)
    expires_at = retention.batch_expires_at(batch, services().settings.result_ttl)
    if retention.is_past(expires_at, utcnow()):
        raise expired("the batch's", expires_at)
    return batch


def _resource(batch: Batch) -> dict:
    counts = repository.batch_status_counts(db(), batch.id)
    return batch_resource(batch, counts, base_url(), services().settings.result_ttl)


def _manifest_entry(row: batches.ManifestRow) -> dict:
    job, line = row.job, row.script_line
    links = job_links(job, base_url())
    if line is None:
        done = job.status in WITH_RESULT
        audio_url, sha256 = (links.audio_url, job.audio_sha256) if done else (None, None)
        status, duration_ms = job.status, job.duration_ms
        error = job.error_message if job.error_code else None
    else:
        done = line.status == LineStatus.SUCCEEDED.value
        audio_url, sha256 = (links.line_audio_urls[line.index], line.audio_sha256) if done else (None, None)
        status, duration_ms, error = line.status, line.duration_ms, line.error
    return {
        "line": row.line,
        "output_name": job.output_name,
        "job_id": str(job.id),
        "script_line": line.index if line else None,
        "status": status,
        "audio_url": audio_url,
        "duration_ms": duration_ms,
        "sha256": sha256,  # of the file at audio_url: a client skips what it already has
        "error": error,
    }


def _csv(entries: list[dict]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=MANIFEST_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(entries)
    return buffer.getvalue()


class _Chunks(io.RawIOBase):
    """A write-only stream whose bytes are taken out as they come (zipfile writes into it)."""

    def __init__(self):
        self.chunks: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        self.chunks.append(bytes(data))
        return len(data)

    def take(self) -> bytes:
        data, self.chunks = b"".join(self.chunks), []
        return data


def _zip(store, files: list[tuple[str, str]], manifest_csv: str, batch_id: uuid.UUID) -> Iterator[bytes]:
    """The archive's bytes as they are made. An error once streaming began is raised on: the
    server then ends the response without its closing chunk, so the client sees a failed
    transfer, never a short zip that looks complete."""
    sink = _Chunks()
    try:
        # Audio barely compresses: storing keeps the archive fast to build and to stream.
        with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_STORED) as archive:
            for name, key in files:
                with store.open(key) as source, archive.open(name, "w", force_zip64=True) as target:
                    while chunk := source.read(ARCHIVE_CHUNK):
                        target.write(chunk)
                        yield sink.take()
            archive.writestr("manifest.csv", manifest_csv)
    except Exception:
        log.warning("event=archive_aborted batch_id=%s", batch_id, exc_info=True)
        raise
    yield sink.take()
