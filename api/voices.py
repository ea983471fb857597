"""/v1/voices: upload, list, read and delete voice prompts (a recording and its transcript).

The API decodes the whole recording (WAV or FLAC, sample rate, channels, length): what it
accepts, every worker can use. The worker, which has torch, resamples it to 24 kHz mono when
it first uses the voice.
"""
from __future__ import annotations

import logging
import uuid

from flask import g, jsonify
from sqlalchemy.exc import IntegrityError

from api.errors import ApiError, ErrorCode
from api.inputs import takes
from api.services import db, services
from jobs import voices
from jobs.inputs import VoicePath, VoiceUpload
from jobs.models import Voice
from jobs.resource import timestamp

log = logging.getLogger(__name__)

MAX_VOICE_UPLOAD_BYTES = 10 * 1024 * 1024


@takes(form=VoiceUpload, max_body_bytes=MAX_VOICE_UPLOAD_BYTES)
def create_voice(form: VoiceUpload | None):
    if form is None:
        raise ApiError(ErrorCode.UNSUPPORTED_MEDIA_TYPE, "send multipart/form-data: name, transcript and audio")
    name, transcript, audio = form.name, form.transcript, form.audio
    extension, duration_ms = audio.recording.extension, audio.recording.duration_ms

    session = db()
    if voices.find_voice(session, g.api_key_id, name) is not None:
        raise ApiError(ErrorCode.VOICE_EXISTS, f"a voice named {name!r} exists; delete it first", "name")
    voice_id = uuid.uuid4()
    key = voices.voice_key(voice_id, extension)
    services().store.put(key, audio.data, f"audio/{extension}")
    try:
        voice = voices.add_voice(session, g.api_key_id, name, transcript, key, duration_ms, voice_id)
        session.commit()
    except IntegrityError:  # the same name uploaded concurrently
        session.rollback()
        _discard(key)  # no row names it
        raise ApiError(ErrorCode.VOICE_EXISTS, f"a voice named {name!r} exists; delete it first", "name") from None
    log.info("event=voice_created voice=%s duration_ms=%d", name, duration_ms)
    return jsonify(_resource(voice)), 201


def list_voices():
    return jsonify({"voices": [_resource(v) for v in voices.list_voices(db(), g.api_key_id)]})


@takes(path=VoicePath)
def get_voice(name: str):
    return jsonify(_resource(_owned(name)))


@takes(path=VoicePath)
def delete_voice(name: str):
    session = db()
    voice = _owned(name)
    voices.delete_voice(session, voice)
    session.commit()
    _discard(voice.audio_key)
    return "", 204


def _discard(key: str) -> None:
    """Removes a recording no row names; one left behind by a store error is only unused."""
    try:
        services().store.delete(key)
    except Exception:
        log.warning("event=voice_object_left key=%s", key, exc_info=True)


def _owned(name: str) -> Voice:
    voice = voices.find_voice(db(), g.api_key_id, name)
    if voice is None:
        raise ApiError(ErrorCode.NOT_FOUND, f"no voice named {name!r}")
    return voice


def _resource(voice: Voice) -> dict:
    return {
        "name": voice.name,
        "transcript": voice.transcript,
        "duration_ms": voice.duration_ms,
        "created_at": timestamp(voice.created_at),
    }
