"""/v1/voices: upload, list, read and delete voice prompts (a recording and its transcript).

The API checks the recording (WAV or FLAC, length limits) without decoding it to the model's
rate: the worker, which has torch, resamples it to 24 kHz mono when it first uses the voice.
"""
from __future__ import annotations

import io
import logging
import uuid

import soundfile
from flask import g, jsonify, request
from sqlalchemy.exc import IntegrityError

from api.errors import ApiError
from api.services import db, services
from jobs import voices
from jobs.models import Voice
from jobs.resource import timestamp
from jobs.validation import VOICE_NAME, InvalidField, text_field

log = logging.getLogger(__name__)

MAX_VOICE_UPLOAD_BYTES = 10 * 1024 * 1024
MIN_VOICE_MS = 500
MAX_VOICE_MS = 30_000  # about 375 of CSM's 2048 context rows
FORMATS = {"WAV": "wav", "FLAC": "flac"}


def create_voice():
    request.max_content_length = MAX_VOICE_UPLOAD_BYTES
    name = request.form.get("name", "")
    if not VOICE_NAME.fullmatch(name):
        raise ApiError(422, "invalid_field", "letters, digits, '.', '_', '-'; at most 64 characters", "name")
    try:
        transcript = text_field(
            request.form, "transcript", request.form.get("transcript"), services().settings.max_text_chars
        )
    except InvalidField as exc:
        raise ApiError(422, "invalid_field", exc.message, exc.field) from None
    upload = request.files.get("audio")
    if upload is None:
        raise ApiError(422, "invalid_field", "attach the recording as a multipart file", "audio")
    data = upload.read()
    extension, duration_ms = _check_audio(data)

    session = db()
    if voices.find_voice(session, g.api_key_id, name) is not None:
        raise ApiError(409, "voice_exists", f"a voice named {name!r} exists; delete it first", "name")
    voice_id = uuid.uuid4()
    key = voices.voice_key(voice_id, extension)
    services().store.put(key, data, f"audio/{extension}")
    try:
        voice = voices.add_voice(session, g.api_key_id, name, transcript, key, duration_ms, voice_id)
        session.commit()
    except IntegrityError:  # the same name uploaded concurrently
        session.rollback()
        raise ApiError(409, "voice_exists", f"a voice named {name!r} exists; delete it first", "name") from None
    log.info("event=voice_created voice=%s duration_ms=%d", name, duration_ms)
    return jsonify(_resource(voice)), 201


def list_voices():
    return jsonify({"voices": [_resource(v) for v in voices.list_voices(db(), g.api_key_id)]})


def get_voice(name: str):
    return jsonify(_resource(_owned(name)))


def delete_voice(name: str):
    session = db()
    voices.delete_voice(session, _owned(name))
    session.commit()
    return "", 204


def _owned(name: str) -> Voice:
    voice = voices.find_voice(db(), g.api_key_id, name)
    if voice is None:
        raise ApiError(404, "not_found", f"no voice named {name!r}")
    return voice


def _check_audio(data: bytes) -> tuple[str, int]:
    try:
        info = soundfile.info(io.BytesIO(data))
    except (RuntimeError, soundfile.LibsndfileError):
        raise ApiError(422, "invalid_field", "must be a WAV or FLAC recording", "audio") from None
    if info.format not in FORMATS:
        raise ApiError(422, "invalid_field", "must be a WAV or FLAC recording", "audio")
    duration_ms = round(info.frames * 1000 / info.samplerate)
    if not MIN_VOICE_MS <= duration_ms <= MAX_VOICE_MS:
        raise ApiError(
            422, "invalid_field",
            f"must last {MIN_VOICE_MS / 1000:g} to {MAX_VOICE_MS / 1000:g} s (got {duration_ms / 1000:g} s)",
            "audio",
        )
    return FORMATS[info.format], duration_ms


def _resource(voice: Voice) -> dict:
    return {
        "name": voice.name,
        "transcript": voice.transcript,
        "duration_ms": voice.duration_ms,
        "created_at": timestamp(voice.created_at),
    }
