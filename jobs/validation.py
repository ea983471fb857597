"""Strict validation of job requests: every problem names its field.

A job is one text, or a script of lines rendered in order as a conversation. Both become a
JobRequest of lines; a text job is a single line.
"""
from __future__ import annotations

import json
import math
import re
import secrets
from dataclasses import dataclass
from typing import Any, Callable

from jobs.formats import DEFAULT_FORMAT, FORMAT_NAMES, FORMATS

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

JOB_FIELDS = frozenset({"max_audio_length_ms", "temperature", "topk", "seed", "format", "metadata", "webhook_url"})
TEXT_JOB_FIELDS = JOB_FIELDS | {"text", "speaker", "voice"}
SCRIPT_JOB_FIELDS = JOB_FIELDS | {"script"}
MAX_URL_CHARS = 2_048
LINE_FIELDS = frozenset({"speaker", "text", "voice", "pause_ms"})


class InvalidField(ValueError):
    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


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


def parse_job_request(
    body: Any,
    *,
    max_text_chars: int,
    voice_exists: Callable[[str], bool],
    check_webhook_url: Callable[[str], None] | None = None,
) -> JobRequest:
    """`check_webhook_url` raises InvalidField for a URL the service will not call; without it,
    a webhook_url is refused."""
    if not isinstance(body, dict):
        raise InvalidField("body", "must be a JSON object")
    is_script = "script" in body
    if is_script and "text" in body:
        raise InvalidField("script", "give either text or script, not both")
    _reject_unknown(body, SCRIPT_JOB_FIELDS if is_script else TEXT_JOB_FIELDS, prefix="")

    max_ms = integer_field(body, "max_audio_length_ms", None, FRAME_MS, MAX_AUDIO_LENGTH_MS)
    temperature = number_field(body, "temperature", DEFAULT_TEMPERATURE, 0.0, MAX_TEMPERATURE)
    if temperature == 0.0:
        raise InvalidField("temperature", "must be above 0 (use topk=1 for greedy decoding)")
    topk = integer_field(body, "topk", DEFAULT_TOPK, 1, MAX_TOPK)
    # A seed is always fixed at submission so that a re-run of the job renders the same audio.
    seed = integer_field(body, "seed", secrets.randbelow(MAX_SEED + 1), 0, MAX_SEED)
    audio_format = format_field(body.get("format"), "format")

    def line(fields: dict, index: int, prefix: str, pause_default: int) -> LineRequest:
        text = text_field(fields, f"{prefix}text", fields.get("text"), max_text_chars)
        return LineRequest(
            speaker=integer_field(fields, "speaker", DEFAULT_SPEAKER, 0, MAX_SPEAKER, prefix),
            text=text,
            voice=voice_field(fields.get("voice"), f"{prefix}voice", voice_exists),
            pause_ms=integer_field(fields, "pause_ms", pause_default, 0, MAX_PAUSE_MS, prefix),
            max_audio_length_ms=max_ms if max_ms is not None else default_length_ms(text),
            seed=line_seed(seed, index),
        )

    if not is_script:
        lines = (line(body, 0, "", 0),)
    else:
        script = body["script"]
        if not isinstance(script, list) or not 1 <= len(script) <= MAX_SCRIPT_LINES:
            raise InvalidField("script", f"must be a list of 1 to {MAX_SCRIPT_LINES} lines")
        parsed = []
        for index, entry in enumerate(script):
            prefix = f"script[{index}]."
            if not isinstance(entry, dict):
                raise InvalidField(f"script[{index}]", "must be an object with speaker and text")
            _reject_unknown(entry, LINE_FIELDS, prefix)
            if "speaker" not in entry:
                raise InvalidField(f"{prefix}speaker", "is required")
            parsed.append(line(entry, index, prefix, DEFAULT_PAUSE_MS))
        lines = tuple(parsed)
    webhook_url = body.get("webhook_url")
    if webhook_url is not None:
        if not isinstance(webhook_url, str) or not 0 < len(webhook_url) <= MAX_URL_CHARS:
            raise InvalidField("webhook_url", f"must be a URL of at most {MAX_URL_CHARS} characters")
        if check_webhook_url is None:
            raise InvalidField("webhook_url", "is not accepted here")
        check_webhook_url(webhook_url)
    return JobRequest(is_script, lines, temperature, topk, seed, _metadata(body), webhook_url, audio_format)


def _reject_unknown(fields: dict, allowed: frozenset[str], prefix: str) -> None:
    unknown = sorted(set(fields) - allowed)
    if unknown:
        raise InvalidField(f"{prefix}{unknown[0]}", "unknown field")


def text_field(fields: dict, name: str, value: Any, max_chars: int) -> str:
    if not isinstance(value, str):
        raise InvalidField(name, "is required and must be a string")
    value = value.strip()
    if not value:
        raise InvalidField(name, "must not be empty")
    if len(value) > max_chars:
        raise InvalidField(name, f"must be at most {max_chars} characters")
    return value


def voice_field(value: Any, name: str, voice_exists: Callable[[str], bool]) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not VOICE_NAME.fullmatch(value):
        raise InvalidField(name, "must be a voice name (letters, digits, '.', '_', '-'; at most 64)")
    if not voice_exists(value):
        raise InvalidField(name, f"no voice named {value!r}; upload it with POST /v1/voices")
    return value


def format_field(value: Any, name: str, default: str = DEFAULT_FORMAT) -> str:
    if value is None:
        return default
    if not isinstance(value, str) or value not in FORMATS:
        raise InvalidField(name, f"must be one of {FORMAT_NAMES}")
    return value


def integer_field(fields: dict, field: str, default, low: int, high: int, prefix: str = ""):
    value = fields.get(field)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidField(prefix + field, "must be an integer")
    if not low <= value <= high:
        raise InvalidField(prefix + field, f"must be between {low} and {high}")
    return value


def number_field(fields: dict, field: str, default: float, low: float, high: float) -> float:
    value = fields.get(field)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InvalidField(field, "must be a number")
    if not low <= value <= high:
        raise InvalidField(field, f"must be between {low} and {high}")
    return float(value)


def _metadata(body: dict) -> dict | None:
    value = body.get("metadata")
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InvalidField("metadata", "must be a JSON object")
    if len(json.dumps(value, separators=(",", ":")).encode()) > MAX_METADATA_BYTES:
        raise InvalidField("metadata", f"must be at most {MAX_METADATA_BYTES} bytes as JSON")
    return value
