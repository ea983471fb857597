"""The JSON bodies the API answers, declared once for GET /openapi.json.

The views build these shapes (jobs.resource and each view); tests check every answer against
them (tests/api/test_openapi.py in process, tests/test_openapi_fuzz.py over HTTP), and no
model admits a field it does not declare, so a field added to a view without its
declaration here fails them.
"""
from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from api.errors import ErrorCode
from jobs.formats import FORMATS
from jobs.outbox import BATCH_COMPLETED, JOB_EVENTS
from jobs.status import BatchStatus, JobStatus, LineStatus

FormatName = Literal[tuple(FORMATS)]  # type: ignore[valid-type]

JOB_ID = "7f6d9a52-3c9e-4a52-9a3b-0d8e1c2b4f10"
BATCH_ID = "0b1c2d3e-4f50-4617-8293-a4b5c6d7e8f9"
EXAMPLE_API = "https://tts.example.com"


class Shape(BaseModel):
    """A closed JSON object: what the API answers has exactly these fields."""

    model_config = ConfigDict(extra="forbid")


# --- errors ---------------------------------------------------------------------------------

class Problem(Shape):
    field: str | None = Field(description="The field at fault, e.g. `script[2].text`; null: the file as a whole.")
    message: str
    line: int | None = Field(None, description="The CSV line (line 1 is the header); CSV uploads only.")


class ErrorDetail(Shape):
    code: ErrorCode = Field(description="Stable and machine-readable; each code comes with one status.")
    message: str = Field(description="For people; may change.")
    field: str | None = Field(None, description="The field at fault, where one is.")
    problems: list[Problem] | None = Field(None, description="Every problem found, where the request had several.")


class Error(Shape):
    """The one error shape of the API (except the OpenAI-compatible routes)."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"error": {"code": "not_found", "message": f"no job {JOB_ID}"}}]}
    )
    error: ErrorDetail


class OpenAIErrorDetail(Shape):
    message: str
    type: Literal["invalid_request_error", "server_error"]
    param: str | None
    code: ErrorCode


class OpenAIError(Shape):
    """The error shape of the OpenAI-compatible routes, as OpenAI's SDKs parse it."""

    error: OpenAIErrorDetail


# --- jobs -----------------------------------------------------------------------------------

class JobError(Shape):
    code: str
    message: str


class JobResult(Shape):
    audio_url: str = Field(description="GET it with the key (a 302 to storage, or the bytes).")
    duration_ms: int
    sample_rate: int
    bytes: int
    sha256: str
    manifest_url: str | None = Field(None, description="Scripts only.")
    line_audio_urls: list[str] | None = Field(None, description="Scripts only: each line's WAV.")


class Job(Shape):
    """A synthesis job: one text, or a script of lines rendered as a conversation."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": JOB_ID, "type": "text", "format": "wav", "status": "succeeded",
                    "created_at": "2026-11-30T10:00:00.000000Z", "started_at": "2026-11-30T10:00:01.000000Z",
                    "finished_at": "2026-11-30T10:00:03.000000Z", "expires_at": None, "attempts": 1, "lines_done": 1,
                    "lines_total": 1, "error": None,
                    "result": {
                        "audio_url": f"{EXAMPLE_API}/v1/jobs/{JOB_ID}/audio", "duration_ms": 1840,
                        "sample_rate": 24000, "bytes": 88364, "sha256": "9f2c" + "0" * 60,
                    },
                    "metadata": {"order": 42}, "batch_id": None,
                }
            ]
        }
    )
    id: uuid.UUID
    type: Literal["text", "script"]
    format: FormatName
    status: JobStatus
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    expires_at: datetime | None = Field(
        description="When RESULT_TTL_HOURS deletes the outputs (downloads then answer 410); null: kept."
    )
    attempts: int
    lines_done: int
    lines_total: int
    error: JobError | None = Field(description="When failed, or partially succeeded (the failed lines).")
    result: JobResult | None = Field(description="Once succeeded or partially succeeded.")
    metadata: dict[str, Any] | None = Field(description="As submitted.")
    batch_id: uuid.UUID | None


class JobPage(Shape):
    jobs: list[Job] = Field(description="Newest first.")
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last.")


class PlayableUrl(Shape):
    """A URL of the audio that needs no key (for `<audio src>`), valid until `expires_at`."""

    url: str
    expires_at: datetime


class ScriptManifestLine(Shape):
    """One line of a script job, as its manifest records it."""

    index: int
    speaker: int
    voice: str | None
    text: str
    status: LineStatus
    attempts: int
    start_ms: int | None = Field(description="Where the line starts in the master; null if it failed.")
    end_ms: int | None
    duration_ms: int | None
    key: str | None = Field(description="The line's object key in storage.")
    sha256: str | None
    seed: int
    error: str | None


class ScriptManifest(Shape):
    """A script job's manifest: the master's length and every line."""

    job_id: uuid.UUID
    sample_rate: int
    duration_ms: int
    lines: list[ScriptManifestLine]


# --- batches --------------------------------------------------------------------------------

class Batch(Shape):
    """A CSV upload: its jobs' progress and where to fetch the outputs."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": BATCH_ID, "status": "running", "filename": "lines.csv",
                    "created_at": "2026-11-30T10:00:00.000000Z", "finished_at": None,
                    "expires_at": None, "jobs_total": 120, "jobs_done": 30, "progress": 0.25,
                    "counts": {"queued": 88, "running": 2, "succeeded": 30},
                    "manifest_url": f"{EXAMPLE_API}/v1/batches/{BATCH_ID}/manifest",
                    "archive_url": f"{EXAMPLE_API}/v1/batches/{BATCH_ID}/archive",
                }
            ]
        }
    )
    id: uuid.UUID
    status: BatchStatus
    filename: str | None
    created_at: datetime
    finished_at: datetime | None
    expires_at: datetime | None = Field(
        description="When RESULT_TTL_HOURS deletes the outputs (downloads then answer 410); null: kept."
    )
    jobs_total: int
    jobs_done: int
    progress: float = Field(ge=0, le=1)
    counts: dict[str, int] = Field(description="Jobs per job status.")
    manifest_url: str
    archive_url: str


class BatchPage(Shape):
    batches: list[Batch] = Field(description="Newest first.")


class BatchCheck(Shape):
    """What a valid CSV would create (`validate_only=true`: nothing is stored)."""

    valid: Literal[True]
    rows: int
    jobs: int
    scripts: int


class BatchManifestRow(Shape):
    """One CSV line of a batch: its job (or its line of a script job) and output."""

    line: int
    output_name: str
    job_id: uuid.UUID
    script_line: int | None
    status: str = Field(description="The job's status, or the script line's.")
    audio_url: str | None
    duration_ms: int | None
    sha256: str | None = Field(description="Of the file at audio_url: a client skips what it already has.")
    error: str | None


class BatchManifest(Shape):
    batch_id: uuid.UUID
    status: BatchStatus
    rows: list[BatchManifestRow]


# --- voices ---------------------------------------------------------------------------------

class Voice(Shape):
    """A voice prompt: a recording and its transcript, the speaker's first context segment."""

    name: str
    transcript: str
    duration_ms: int
    created_at: datetime


class VoiceList(Shape):
    voices: list[Voice]


# --- webhooks -------------------------------------------------------------------------------

class DeliveryAttempt(Shape):
    attempted_at: datetime
    status_code: int | None = Field(description="The receiver's answer; null when none came.")
    error: str | None
    duration_ms: int | None


class Delivery(Shape):
    """A webhook event and every attempt to deliver it."""

    id: str = Field(description="The `webhook-id` header, the same on every attempt.")
    type: str
    url: str
    status: str
    created_at: datetime
    delivered_at: datetime | None
    next_attempt_at: datetime | None
    attempts: list[DeliveryAttempt]


class DeliveryList(Shape):
    deliveries: list[Delivery]


class JobEvent(Shape):
    """A webhook's body when a job (not of a batch) ends."""

    type: Literal[tuple(JOB_EVENTS.values())]  # type: ignore[valid-type]
    timestamp: datetime = Field(description="When the event happened (the same on every attempt).")
    data: Job = Field(description="The job as GET /v1/jobs/{job_id} answers it.")


class BatchEvent(Shape):
    """A webhook's body when every job of a batch has ended."""

    type: Literal[BATCH_COMPLETED]  # type: ignore[valid-type]
    timestamp: datetime = Field(description="When the event happened (the same on every attempt).")
    data: Batch = Field(description="The batch as GET /v1/batches/{batch_id} answers it.")


class WebhookSecret(Shape):
    secret: str | None = Field(description="`whsec_...`: signs the key's webhooks.")
    previous_secret_expires_at: datetime | None = Field(
        description="After a rotation, the previous secret also signs until then."
    )


# --- synchronous synthesis ------------------------------------------------------------------

class EncodedAudio(Shape):
    audio_data: str = Field(description="The audio file, base64-encoded.")
    format: FormatName
    encoding: Literal["base64"]


class GeneratedAudio(Shape):
    run_id: uuid.UUID = Field(description="The job's id.")
    result: EncodedAudio
    run_time_ms: float


class Model(Shape):
    id: str
    object: Literal["model"]
    created: int
    owned_by: str


class ModelList(Shape):
    object: Literal["list"]
    data: list[Model]


class AudioVoice(Shape):
    id: str
    name: str


class AudioVoiceList(Shape):
    voices: list[AudioVoice]


# --- the service ----------------------------------------------------------------------------

class Health(Shape):
    status: Literal["ok"]


class Readiness(Shape):
    status: Literal["ready", "unavailable"]
    failed: list[Literal["database", "broker", "object_store"]] | None = Field(
        None, description="The dependencies that failed or did not answer in time."
    )
