"""Request models of the routes beyond a job's own body (jobs.validation): list queries and
their cursor, voice and batch uploads, OpenAI's speech body, path parameters, signed file URLs.

Query strings and form fields arrive as text: integers in them are decimal text. Uploaded files
arrive as an `Upload`, which the API builds from the multipart part.
"""
from __future__ import annotations

import base64
import binascii
import json
import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field, ValidationInfo, WithJsonSchema
from pydantic_core import from_json

from jobs.fields import (
    FieldError, Flag, Input, String, Text, context_of, integer, integer_from_text, invalid, number, one_of, pattern,
)
from jobs.formats import FORMATS
from jobs.recordings import Recording, UnreadableRecording, read_recording
from jobs.repository import Cursor
from jobs.status import JobStatus
from jobs.validation import (
    DEFAULT_SPEAKER, MAX_SCRIPT_LINES, MAX_SPEAKER, VOICE_NAME, SyncTextJob, Tuning, VoiceName, WebhookUrl,
)

DEFAULT_PAGE = 20
MAX_PAGE = 100
MAX_FILENAME_CHARS = 255  # the batches.filename column
EVENT_ID = re.compile(r"msg_[0-9a-f]{24}")  # jobs.outbox names webhook events so

MODEL = "csm-1b"
MODELS = (MODEL, "tts-1", "tts-1-hd", "gpt-4o-mini-tts")  # OpenAI's names are aliases of CSM-1B
UNSUPPORTED_FORMATS = ("aac",)  # OpenAI's, refused with their own code: they need ffmpeg


# --- uploads ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Upload:
    """A file part of a multipart form."""

    filename: str | None
    data: bytes


def _upload(value: Any) -> Upload:
    if not isinstance(value, Upload):
        raise invalid("attach a file (a multipart file part)")
    name = value.filename
    if name is not None and (len(name) > MAX_FILENAME_CHARS or "\x00" in name):
        raise invalid("its file name must be at most {limit} characters, without NUL", limit=MAX_FILENAME_CHARS)
    return value


File = Annotated[Upload, BeforeValidator(_upload), WithJsonSchema({"type": "string", "format": "binary"})]


@dataclass(frozen=True)
class VoiceRecording:
    data: bytes  # as uploaded, to be stored
    recording: Recording  # decoded whole


def _recording(upload: Upload) -> VoiceRecording:
    try:
        return VoiceRecording(upload.data, read_recording(upload.data))
    except UnreadableRecording as exc:
        raise invalid(str(exc)) from None


# --- lists -----------------------------------------------------------------------------------

Limit = Annotated[integer_from_text(1, MAX_PAGE), Field(description=f"page size, {DEFAULT_PAGE} by default")]


def encode_cursor(created_at: datetime, job_id: uuid.UUID) -> str:
    """The opaque `next_cursor` of a page that ends with this job."""
    raw = json.dumps([created_at.isoformat(), str(job_id)]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _cursor(value: Any) -> Cursor:
    message = "is not a cursor this API returned"
    if not isinstance(value, str):
        raise invalid(message)
    try:
        # pydantic_core's parser bounds nesting; the standard library's recurses until it fails.
        decoded = from_json(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)))
        created_at, job_id = decoded
    except (ValueError, TypeError, binascii.Error):
        raise invalid(message) from None
    if not (isinstance(created_at, str) and isinstance(job_id, str)):  # uuid.UUID(5) raises AttributeError
        raise invalid(message)
    try:
        cursor = Cursor(datetime.fromisoformat(created_at), uuid.UUID(job_id))
    except ValueError:
        raise invalid(message) from None
    if cursor.created_at.tzinfo is None:  # every cursor given out has one
        raise invalid(message)
    return cursor


JobCursor = Annotated[Cursor, BeforeValidator(_cursor), WithJsonSchema({"type": "string"})]


class JobListQuery(Input):
    """GET /v1/jobs: newest first."""

    status: one_of(*(status.value for status in JobStatus)) | None = None
    limit: Limit = DEFAULT_PAGE
    cursor: JobCursor | None = Field(None, description="a `next_cursor` of a previous page")


class BatchListQuery(Input):
    """GET /v1/batches: newest first."""

    limit: Limit = DEFAULT_PAGE


class ManifestQuery(Input):
    format: one_of("json", "csv") = "json"


# --- batches and voices ----------------------------------------------------------------------

class BatchOptions(Input):
    """POST /v1/batches query string."""

    validate_only: Flag = Field(False, description="check the file and create nothing")
    webhook_url: WebhookUrl | None = None


class BatchUpload(Input):
    """POST /v1/batches as multipart/form-data (or the CSV itself as a text/csv body)."""

    file: File
    webhook_url: WebhookUrl | None = None


class VoiceUpload(Input):
    """POST /v1/voices (multipart/form-data)."""

    name: VoiceName
    transcript: Text = Field(description="the words spoken in the recording")
    audio: Annotated[File, AfterValidator(_recording)] = Field(
        description="WAV or FLAC, 0.5 to 30 s, mono or stereo, 8 to 192 kHz"
    )


class VoicePath(Input):
    name: VoiceName


class LinePath(Input):
    index: integer(0, MAX_SCRIPT_LINES - 1)  # a script's line; bounded before it reaches SQL


class EventPath(Input):
    event_id: pattern(EVENT_ID, "must be a webhook event id (msg_ and 24 hexadecimal digits)")


class SignedFileQuery(Input):
    """GET /files/<key>: a URL the API signed (one without its signature is forbidden, 403)."""

    expires: integer_from_text(0, 2**63 - 1) | None = None
    signature: String | None = None


# --- OpenAI's speech -------------------------------------------------------------------------

@dataclass(frozen=True)
class SpeechVoice:
    speaker: int
    voice: str | None  # a stored voice of the caller


def _speech_voice(value: Any, info: ValidationInfo) -> SpeechVoice:
    """The caller's voice of that name first, then a speaker number, then OpenAI's voice names.
    A custom voice object `{"id": name}` names one too."""
    if isinstance(value, dict) and set(value) == {"id"}:
        value = value["id"]
    if not isinstance(value, str) or not value or "\x00" in value:
        raise invalid("is required: a voice name or a speaker number")
    context = context_of(info)
    if VOICE_NAME.fullmatch(value) and context.voice_exists is not None and context.voice_exists(value):
        return SpeechVoice(DEFAULT_SPEAKER, value)
    if value.isascii() and value.isdigit() and int(value) <= MAX_SPEAKER:
        return SpeechVoice(int(value), None)
    if value in context.openai_voices:
        return SpeechVoice(context.openai_voices[value], None)
    raise invalid(
        "unknown voice '{name}': give one of your voices, a speaker number 0 to {high}, "
        "or an OpenAI voice name (GET /v1/audio/voices lists them)", name=value, high=MAX_SPEAKER,
    )


def _response_format(value: Any) -> str:
    if value in UNSUPPORTED_FORMATS:
        raise invalid("{name} is not supported (it needs ffmpeg); use {names}", FieldError.UNSUPPORTED_FORMAT,
                      name=value, names=", ".join(FORMATS))
    return value


def _speed(value: float) -> float:
    if value != 1.0:
        raise invalid("only speed 1.0 is supported: CSM has no speed control", FieldError.UNSUPPORTED_SPEED)
    return value


def _stream_format(value: Any) -> str:
    if value != "audio":
        raise invalid("only stream_format 'audio' is supported", FieldError.UNSUPPORTED_STREAM_FORMAT)
    return value


class SpeechBody(Tuning):
    """POST /v1/audio/speech, in OpenAI's shape; the tuning fields are this API's own (OpenAI's
    SDKs send them with `extra_body`)."""

    model: one_of(*MODELS)
    input: Text
    voice: Annotated[SpeechVoice, BeforeValidator(_speech_voice), WithJsonSchema(
        {"anyOf": [{"type": "string"}, {"type": "object", "properties": {"id": {"type": "string"}}, "required": ["id"]}]}
    )]
    response_format: Annotated[one_of(*FORMATS), BeforeValidator(_response_format)] = "mp3"
    speed: Annotated[number(0.25, 4.0), AfterValidator(_speed)] = 1.0
    instructions: String | None = Field(None, description="accepted and ignored")
    stream_format: Annotated[str, Field(json_schema_extra={"enum": ["audio"]}), BeforeValidator(_stream_format)] = "audio"

    def job(self) -> SyncTextJob:
        """The text job this request renders (every field already checked)."""
        return SyncTextJob.model_construct(
            text=self.input, speaker=self.voice.speaker, voice=self.voice.voice, format=self.response_format,
            **{name: getattr(self, name) for name in Tuning.model_fields},
        )
