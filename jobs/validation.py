"""Strict validation of job requests: every problem names its field."""
from __future__ import annotations

import json
import math
import secrets
from dataclasses import dataclass
from typing import Any

FRAME_MS = 80  # one CSM audio frame
MAX_AUDIO_LENGTH_MS = 90_000
MAX_SPEAKER = 1_000
MAX_TOPK = 2_051  # the audio vocabulary size
MAX_TEMPERATURE = 2.0
MAX_SEED = 2**31 - 1
MAX_METADATA_BYTES = 4_096
# When the caller gives no limit, bound the length by the text so that a missing end frame
# cannot run to 90 s of noise: generous for speech (about 15 characters a second).
BASE_LENGTH_MS = 3_000
LENGTH_MS_PER_CHAR = 150

DEFAULT_TEMPERATURE = 0.9
DEFAULT_TOPK = 50
DEFAULT_SPEAKER = 0


class InvalidField(ValueError):
    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class JobRequest:
    text: str
    speaker: int
    max_audio_length_ms: int
    temperature: float
    topk: int
    seed: int
    metadata: dict | None


FIELDS = frozenset(
    {"text", "speaker", "max_audio_length_ms", "temperature", "topk", "seed", "metadata"}
)


def default_length_ms(text: str) -> int:
    return min(MAX_AUDIO_LENGTH_MS, BASE_LENGTH_MS + LENGTH_MS_PER_CHAR * len(text))


def parse_job_request(body: Any, *, max_text_chars: int) -> JobRequest:
    if not isinstance(body, dict):
        raise InvalidField("body", "must be a JSON object")
    unknown = sorted(set(body) - FIELDS)
    if unknown:
        raise InvalidField(unknown[0], "unknown field")

    text = body.get("text")
    if not isinstance(text, str):
        raise InvalidField("text", "is required and must be a string")
    text = text.strip()
    if not text:
        raise InvalidField("text", "must not be empty")
    if len(text) > max_text_chars:
        raise InvalidField("text", f"must be at most {max_text_chars} characters")

    speaker = _integer(body, "speaker", DEFAULT_SPEAKER, 0, MAX_SPEAKER)
    max_ms = _integer(
        body, "max_audio_length_ms", default_length_ms(text), FRAME_MS, MAX_AUDIO_LENGTH_MS
    )
    temperature = _number(body, "temperature", DEFAULT_TEMPERATURE, 0.0, MAX_TEMPERATURE)
    if temperature == 0.0:
        raise InvalidField("temperature", "must be above 0 (use topk=1 for greedy decoding)")
    topk = _integer(body, "topk", DEFAULT_TOPK, 1, MAX_TOPK)
    # A seed is always fixed at submission so that a re-run of the job renders the same audio.
    seed = _integer(body, "seed", secrets.randbelow(MAX_SEED + 1), 0, MAX_SEED)
    return JobRequest(text, speaker, max_ms, temperature, topk, seed, _metadata(body))


def _integer(body: dict, field: str, default: int, low: int, high: int) -> int:
    value = body.get(field)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidField(field, "must be an integer")
    if not low <= value <= high:
        raise InvalidField(field, f"must be between {low} and {high}")
    return value


def _number(body: dict, field: str, default: float, low: float, high: float) -> float:
    value = body.get(field)
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
