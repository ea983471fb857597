"""OpenAI-compatible text to speech: POST /v1/audio/speech, GET /v1/models[/{id}] and
GET /v1/audio/voices, in the shapes OpenAI's SDKs (and apps built on them) expect.

A speech request is a synchronous job (api.sync) answered with the audio bytes. Errors take
OpenAI's shape (api.errors.openai_errors).
"""
from __future__ import annotations

from flask import Response, g, jsonify

from api.errors import ApiError, ErrorCode, openai_errors
from api.inputs import takes
from api.services import db, services
from api.sync import render_and_wait
from jobs.formats import audio_format
from jobs.inputs import MODELS, SpeechBody
from jobs.validation import job_request
from jobs.voices import list_voices

MODEL_CREATED = 1741824000  # 2025-03-13, CSM-1B's release
OWNER = "csm-batch"


@openai_errors
@takes(body=SpeechBody)
def create_speech(body: SpeechBody):
    rendered = render_and_wait(job_request(body.job()))
    response = Response(rendered.audio, mimetype=audio_format(body.response_format).media_type)
    response.headers["X-Job-Id"] = str(rendered.job.id)
    return response


@openai_errors
def list_models():
    return jsonify({"object": "list", "data": [_model(name) for name in MODELS]})


@openai_errors
def get_model(model: str):
    if model not in MODELS:
        raise ApiError(ErrorCode.MODEL_NOT_FOUND, f"the model {model!r} does not exist; GET /v1/models lists them", "model")
    return jsonify(_model(model))


@openai_errors
def list_audio_voices():
    """The key's stored voices, then OpenAI's voice names (mapped to speakers by OPENAI_VOICES)."""
    stored = [voice.name for voice in list_voices(db(), g.api_key_id)]
    mapped = [name for name in services().settings.openai_voices if name not in stored]
    return jsonify({"voices": [{"id": name, "name": name} for name in stored + mapped]})


def _model(name: str) -> dict:
    return {"id": name, "object": "model", "created": MODEL_CREATED, "owned_by": OWNER}
