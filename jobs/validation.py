"""The job request: its models (a text job, or a script of lines rendered in order as a
conversation) and the JobRequest they become, a text job being a script of one line.

POST /v1/jobs, /generate_audio, /v1/audio/speech and every row of a batch CSV are checked by
these models (jobs.fields says how); `job_request` turns a validated model into a JobRequest.
"""
from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field, RootModel, ValidationInfo, model_validator

from jobs.fields import (
    Context, Input, Refused, Text, context_of, finite_json, integer, invalid, number, one_of, pattern, validate,
    without_nulls,
)
from jobs.formats import DEFAULT_FORMAT, FORMATS
from webhooks.ssrf import MAX_URL_CHARS

# The engine's values, copied: the API never imports the engine (tests/test_shared_constants.py)
FRAME_MS = 80  # one CSM audio frame
MAX_AUDIO_LENGTH_MS = 90_000
MAX_SPEAKER = 1_000
MAX_TOPK = 2_051  # the audio vocabulary size
MAX_TEMPERATURE = 2.0
MAX_SEED = 2**31 - 1
MAX_METADATA_BYTES = 4_096
MAX_SCRIPT_LINES = 200
MAX_PAUSE_MS = 10_000
VOICE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
# When the caller gives no limit, bound the length by the text so that a missing end frame
# cannot run to 90 s of noise: generous for speech (about 15 characters a second).
BASE_LENGTH_MS = 3_000
LENGTH_MS_PER_CHAR = 150

DEFAULT_TEMPERATURE = 0.9
DEFAULT_TOPK = 50
DEFAULT_SPEAKER = 0
DEFAULT_PAUSE_MS = 300


# --- field types -----------------------------------------------------------------------------

Speaker = integer(0, MAX_SPEAKER)
AudioLength = integer(FRAME_MS, MAX_AUDIO_LENGTH_MS)
Temperature = number(0.0, MAX_TEMPERATURE, above_low="must be above 0 (use topk=1 for greedy decoding)")
TopK = integer(1, MAX_TOPK)
Seed = integer(0, MAX_SEED)
PauseMs = integer(0, MAX_PAUSE_MS)
Format = one_of(*FORMATS)
VoiceName = pattern(VOICE_NAME, "must be a voice name (letters, digits, '.', '_', '-'; at most 64)")


def _voice_exists(name: str, info: ValidationInfo) -> str:
    exists = context_of(info).voice_exists
    if exists is not None and not exists(name):
        raise invalid("no voice named '{name}'; upload it with POST /v1/voices", name=name)
    return name


def _metadata(value: Any) -> dict:
    if not isinstance(value, dict):
        raise invalid("must be a JSON object")
    if not finite_json(value):
        raise invalid("must not contain NaN or Infinity (they are not JSON)")
    if len(json.dumps(value, separators=(",", ":")).encode()) > MAX_METADATA_BYTES:
        raise invalid("must be at most {limit} bytes as JSON", limit=MAX_METADATA_BYTES)
    return value


def _webhook_url(value: Any, info: ValidationInfo) -> str:
    if not isinstance(value, str) or not 0 < len(value) <= MAX_URL_CHARS:
        raise invalid("must be a URL of at most {limit} characters", limit=MAX_URL_CHARS)
    check = context_of(info).check_webhook_url
    if check is None:
        raise invalid("is not accepted here")
    try:
        check(value)
    except Refused as exc:
        raise invalid(str(exc)) from None
    return value


Voice = Annotated[VoiceName, AfterValidator(_voice_exists)]  # one of the caller's voices
Metadata = Annotated[dict[str, Any], BeforeValidator(_metadata)]
WebhookUrl = Annotated[str, Field(max_length=MAX_URL_CHARS), BeforeValidator(_webhook_url)]


def _script(value: Any) -> Any:
    if not isinstance(value, list) or not 1 <= len(value) <= MAX_SCRIPT_LINES:
        raise invalid("must be a list of 1 to {limit} lines", limit=MAX_SCRIPT_LINES)
    return value


# --- models ----------------------------------------------------------------------------------

class Tuning(Input):
    """How to sample; shared by every route that renders."""

    max_audio_length_ms: AudioLength | None = Field(None, description="default: grows with the text")
    temperature: Temperature = DEFAULT_TEMPERATURE
    topk: TopK = DEFAULT_TOPK
    seed: Seed | None = Field(None, description="default: drawn at submission, so a re-run is identical")


class JobOptions(Tuning):
    format: Format = DEFAULT_FORMAT
    metadata: Metadata | None = Field(None, description=f"any JSON object of at most {MAX_METADATA_BYTES} bytes")


class SyncTextJob(JobOptions):
    """A text job without a webhook: /generate_audio and /v1/audio/speech render it while the
    request waits; each independent row of a batch CSV is one."""

    text: Text
    speaker: Speaker = DEFAULT_SPEAKER
    voice: Voice | None = None


class TextJob(SyncTextJob):
    webhook_url: WebhookUrl | None = None


class ScriptLine(Input):
    speaker: Speaker
    text: Text
    voice: Voice | None = None
    pause_ms: PauseMs = Field(DEFAULT_PAUSE_MS, description="silence after this line")


class ScriptJob(JobOptions):
    script: Annotated[list[ScriptLine], Field(min_length=1, max_length=MAX_SCRIPT_LINES), BeforeValidator(_script)]
    webhook_url: WebhookUrl | None = None


class JobBody(RootModel[TextJob | ScriptJob]):
    """POST /v1/jobs: a text job, or a script job when `script` is given."""

    @model_validator(mode="wrap")
    @classmethod
    def _kind(cls, data: Any, handler, info: ValidationInfo):
        if not isinstance(data, dict):
            raise invalid("must be a JSON object")
        data = without_nulls(data)
        if "script" in data and "text" in data:
            raise invalid("give either text or script, not both", at="script")
        kind = ScriptJob if "script" in data else TextJob
        return cls.model_construct(kind.model_validate(data, context=info.context))


# --- the job request -------------------------------------------------------------------------

@dataclass(frozen=True)
class LineRequest:
    speaker: int
    text: str
    voice: str | None
    pause_ms: int  # silence after this line in a script's master
    max_audio_length_ms: int
    seed: int


@dataclass(frozen=True)
class JobRequest:
    is_script: bool
    lines: tuple[LineRequest, ...]
    temperature: float
    topk: int
    seed: int
    metadata: dict | None
    webhook_url: str | None = None
    format: str = DEFAULT_FORMAT  # of the job's audio: a name in jobs.formats.FORMATS


def default_length_ms(text: str) -> int:
    return min(MAX_AUDIO_LENGTH_MS, BASE_LENGTH_MS + LENGTH_MS_PER_CHAR * len(text))


def line_seed(job_seed: int, index: int) -> int:
    """Each line of a job has its own seed, derived so that a re-render is identical."""
    return (job_seed + index) % (MAX_SEED + 1)


def job_request(job: SyncTextJob | ScriptJob) -> JobRequest:
    """The request of a validated job model. A seed is always fixed here, at submission, so that
    a re-run of the job renders the same audio."""
    seed = job.seed if job.seed is not None else secrets.randbelow(MAX_SEED + 1)
    is_script = isinstance(job, ScriptJob)
    lines = job.script if is_script else [job]
    return JobRequest(
        is_script=is_script,
        lines=tuple(
            LineRequest(
                speaker=line.speaker,
                text=line.text,
                voice=line.voice,
                pause_ms=line.pause_ms if is_script else 0,
                max_audio_length_ms=job.max_audio_length_ms or default_length_ms(line.text),
                seed=line_seed(seed, index),
            )
            for index, line in enumerate(lines)
        ),
        temperature=job.temperature,
        topk=job.topk,
        seed=seed,
        metadata=job.metadata,
        webhook_url=getattr(job, "webhook_url", None),
        format=job.format,
    )
