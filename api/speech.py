"""OpenAI-compatible text to speech: POST /v1/audio/speech, GET /v1/models[/{id}] and
GET /v1/audio/voices, in the shapes OpenAI's SDKs (and apps built on them) expect.

A speech request is a synchronous job (api.sync) answered with the audio bytes. Errors take
OpenAI's shape (api.errors.openai_errors).
"""
from __future__ import annotations

import math

from flask import Response, g, jsonify

from api.errors import ApiError, openai_errors
from api.jobs import json_body, parse_request
from api.services import db, services
from api.sync import render_and_wait
from jobs.formats import FORMAT_NAMES, FORMATS, MP3, audio_format
from jobs.validation import MAX_SPEAKER, InvalidField, text_field
from jobs.voices import find_voice, list_voices

MODEL = "csm-1b"
MODELS = (MODEL, "tts-1", "tts-1-hd", "gpt-4o-mini-tts")  # OpenAI's names are aliases of CSM-1B
MODEL_CREATED = 1741824000  # 2025-03-13, CSM-1B's release
OWNER = "csm-batch"
# This API's own tuning fields, accepted too (the SDKs send them with `extra_body`).
TUNING_FIELDS = ("max_audio_length_ms", "temperature", "topk", "seed")
FIELDS = frozenset({"model", "input", "voice", "response_format", "speed", "instructions", "stream_format", *TUNING_FIELDS})


@openai_errors
def create_speech():
    body = json_body()
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_field", "the body must be a JSON object")
    unknown = sorted(set(body) - FIELDS)
    if unknown:
        raise ApiError(400, "invalid_field", f"unknown parameter {unknown[0]!r}", unknown[0])
    _check_model(body.get("model"))
    try:
        text = text_field(body, "input", body.get("input"), services().settings.max_text_chars)
    except InvalidField as exc:
        raise ApiError(400, "invalid_field", exc.message, exc.field) from None
    speaker, voice = _voice(body.get("voice"))
    response_format = _response_format(body.get("response_format", MP3.name))
    _check_unsupported(body)
    fields = {"text": text, "speaker": speaker, "voice": voice, "format": response_format}
    rendered = render_and_wait(parse_request(fields | {name: body[name] for name in TUNING_FIELDS if name in body}))
    response = Response(rendered.audio, mimetype=audio_format(response_format).media_type)
    response.headers["X-Job-Id"] = str(rendered.job.id)
    return response


@openai_errors
def list_models():
    return jsonify({"object": "list", "data": [_model(name) for name in MODELS]})


@openai_errors
def get_model(model: str):
    if model not in MODELS:
        raise ApiError(404, "model_not_found", f"the model {model!r} does not exist; GET /v1/models lists them", "model")
    return jsonify(_model(model))


@openai_errors
def list_audio_voices():
    """The key's stored voices, then OpenAI's voice names (mapped to speakers by OPENAI_VOICES)."""
    stored = [voice.name for voice in list_voices(db(), g.api_key_id)]
    mapped = [name for name in services().settings.openai_voices if name not in stored]
    return jsonify({"voices": [{"id": name, "name": name} for name in stored + mapped]})


def _model(name: str) -> dict:
    return {"id": name, "object": "model", "created": MODEL_CREATED, "owned_by": OWNER}


def _check_model(model) -> None:
    if not isinstance(model, str) or not model:
        raise ApiError(400, "invalid_field", "is required: one of " + ", ".join(MODELS), "model")
    if model not in MODELS:
        raise ApiError(400, "invalid_field", f"unknown model {model!r}; use one of {', '.join(MODELS)}", "model")


def _voice(value) -> tuple[int, str | None]:
    """(speaker, stored voice name or None): the key's voice of that name first, then a speaker
    number, then OpenAI's voice names. A custom voice object `{"id": name}` names one too."""
    if isinstance(value, dict) and set(value) == {"id"}:
        value = value["id"]
    if not isinstance(value, str) or not value:
        raise ApiError(400, "invalid_field", "is required: a voice name or a speaker number", "voice")
    if find_voice(db(), g.api_key_id, value) is not None:
        return 0, value
    if value.isdigit() and int(value) <= MAX_SPEAKER:
        return int(value), None
    speaker = services().settings.openai_voices.get(value)
    if speaker is None:
        raise ApiError(
            400, "invalid_field",
            f"unknown voice {value!r}: give one of your voices, a speaker number 0 to {MAX_SPEAKER}, "
            "or an OpenAI voice name (GET /v1/audio/voices lists them)",
            "voice",
        )
    return speaker, None


def _response_format(value) -> str:
    if value == "aac":
        raise ApiError(400, "unsupported_format", f"aac is not supported (it needs ffmpeg); use {FORMAT_NAMES}", "response_format")
    if not isinstance(value, str) or value not in FORMATS:
        raise ApiError(400, "invalid_field", f"must be one of {FORMAT_NAMES}", "response_format")
    return value


def _check_unsupported(body: dict) -> None:
    """speed other than 1.0 and streamed events are refused; instructions are accepted and ignored."""
    speed = body.get("speed", 1.0)
    if isinstance(speed, bool) or not isinstance(speed, (int, float)) or not math.isfinite(speed):
        raise ApiError(400, "invalid_field", "must be a number", "speed")
    if speed != 1.0:
        raise ApiError(400, "unsupported_speed", "only speed 1.0 is supported: CSM has no speed control", "speed")
    if body.get("stream_format", "audio") != "audio":
        raise ApiError(400, "unsupported_stream_format", "only stream_format 'audio' is supported", "stream_format")
    if not isinstance(body.get("instructions", ""), str):
        raise ApiError(400, "invalid_field", "must be a string (it is accepted and ignored)", "instructions")
