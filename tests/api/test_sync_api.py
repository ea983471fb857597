"""Synchronous routes at the REST boundary, on the embedded default (no Redis: requests re-read
SQL with a backoff): the original deployment's /generate_audio, OpenAI's /v1/audio/speech,
/v1/models and /v1/audio/voices; waiting, its bounds, and bad input by field.

A thread plays the worker: it claims the queued job of the sync queue and records audio."""
import base64
import hashlib
import threading
import time
import uuid

import pytest
from sqlalchemy import select

from api import create_app
from api_helpers import auth, published_messages, stored_jobs
from provision import create_key, init
from jobs import repository
from jobs.errors import JobError
from jobs.models import Job, JobLine
from jobs.queue import SYNC_QUEUE
from jobs.repository import AudioResult, LineResult
from jobs.resource import audio_key
from jobs.status import LineStatus
from support import make_settings
from test_scripts_voices_api import upload_voice, wav_bytes

SPEECH = {"model": "tts-1", "input": "Hello there.", "voice": "alloy"}


@pytest.fixture
def make_app(tmp_path):
    def make(**environ):
        settings = make_settings(CSM_DATA_DIR=str(tmp_path), MAX_TEXT_CHARS="200", **environ)
        init(settings)
        return settings, create_app(settings)

    return make


@pytest.fixture
def waiting_app(make_app):
    """Requests wait up to 10 s: long enough for the playing worker."""
    return make_app(SYNC_WAIT_S="10")


@pytest.fixture
def impatient_app(make_app):
    """Requests give up at once: for checks of what was stored and published."""
    return make_app(SYNC_WAIT_S="0.05")


class PlayingWorker(threading.Thread):
    """Finishes the next queued job of the sync queue with `audio`, as a worker records it."""

    def __init__(self, app, audio: bytes = b"RIFF-audio-bytes", fail: tuple[JobError, str] | None = None):
        super().__init__(daemon=True)
        self.services = app.extensions["csm_batch"]
        self.audio, self.fail = audio, fail
        self.job_id: uuid.UUID | None = None
        self.start()

    def run(self):
        deadline = time.monotonic() + 10
        while self.job_id is None and time.monotonic() < deadline:
            with self.services.sessions.begin() as session:
                self.job_id = session.scalar(select(Job.id).where(Job.queue == SYNC_QUEUE, Job.status == "queued"))
            time.sleep(0.02)
        with self.services.sessions.begin() as session:
            claim = repository.claim_job(session, self.job_id, lease_s=60, max_attempts=3)
            if self.fail:
                repository.fail_job(session, claim, *self.fail)
                return
            key = audio_key(claim.job_id, claim.token, claim.format)
            self.services.store.put(key, self.audio, "application/octet-stream")
            repository.record_line(session, claim, 0, LineResult(LineStatus.SUCCEEDED, 1, key, 100, "x"))
            digest = hashlib.sha256(self.audio).hexdigest()
            repository.complete_job(session, claim, AudioResult(key, 100, 24_000, len(self.audio), digest))


def a_wav() -> bytes:
    return wav_bytes(0.1, rate=24_000)


@pytest.mark.parametrize("path", ["/generate_audio", "/v1/generate_audio"])
def test_generate_audio_answers_the_original_contract(waiting_app, path):
    settings, app = waiting_app
    key = create_key(settings, "alice")
    client = app.test_client()
    worker = PlayingWorker(app, a_wav())
    response = client.post(path, json={"text": "Hello there."}, headers=auth(key))
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert set(body) == {"run_id", "result", "run_time_ms"} and body["run_time_ms"] > 0
    assert body["result"]["format"] == "wav" and body["result"]["encoding"] == "base64"
    assert base64.b64decode(body["result"]["audio_data"]) == a_wav()
    # run_id is an ordinary job: listed and pollable.
    assert body["run_id"] == str(worker.job_id)
    assert client.get(f"/v1/jobs/{body['run_id']}", headers=auth(key)).get_json()["status"] == "succeeded"
    assert [job["id"] for job in client.get("/v1/jobs", headers=auth(key)).get_json()["jobs"]] == [body["run_id"]]


def test_speech_answers_the_audio_bytes_in_the_format_asked(waiting_app):
    settings, app = waiting_app
    key = create_key(settings, "alice")
    PlayingWorker(app, b"fLaC-bytes")
    response = app.test_client().post("/v1/audio/speech", json=SPEECH | {"response_format": "flac"}, headers=auth(key))
    assert response.status_code == 200
    assert (response.data, response.headers["Content-Type"]) == (b"fLaC-bytes", "audio/flac")
    with app.extensions["csm_batch"].sessions() as session:
        job = session.get(Job, uuid.UUID(response.headers["X-Job-Id"]))
        assert (job.queue, job.format, job.audio_key.endswith(".flac")) == (SYNC_QUEUE, "flac", True)


def test_a_failed_job_is_an_error_naming_it_and_not_retried(waiting_app):
    settings, app = waiting_app
    key = create_key(settings, "alice")
    worker = PlayingWorker(app, fail=(JobError.NO_AUDIO, "no audio after 3 attempts"))
    response = app.test_client().post("/v1/audio/speech", json=SPEECH, headers=auth(key))
    assert response.status_code == 500 and response.headers["x-should-retry"] == "false"
    error = response.get_json()["error"]
    assert error["type"] == "server_error" and str(worker.job_id) in error["message"] and "no_audio" in error["message"]


def test_past_sync_wait_s_a_504_names_the_job_which_stays_queued(impatient_app):
    settings, app = impatient_app
    key = create_key(settings, "alice")
    client = app.test_client()
    response = client.post("/generate_audio", json={"text": "Nobody renders this."}, headers=auth(key))
    assert response.status_code == 504 and response.headers["x-should-retry"] == "false"
    job_url = response.headers["Location"]
    job_id = job_url.rsplit("/", 1)[1]
    assert job_id in response.get_json()["error"]["message"]
    assert client.get(job_url, headers=auth(key)).get_json()["status"] == "queued"
    assert published_messages(settings) == 1


def test_a_job_deleted_while_its_request_waits_answers_404(waiting_app):
    settings, app = waiting_app
    key = create_key(settings, "alice")

    def delete_once_queued():
        deadline, job_id = time.monotonic() + 10, None
        while job_id is None and time.monotonic() < deadline:
            with app.extensions["csm_batch"].sessions() as session:
                job_id = session.scalar(select(Job.id).where(Job.queue == SYNC_QUEUE))
            time.sleep(0.02)
        assert app.test_client().delete(f"/v1/jobs/{job_id}", headers=auth(key)).status_code == 204

    deleter = threading.Thread(target=delete_once_queued, daemon=True)
    deleter.start()
    response = app.test_client().post("/generate_audio", json={"text": "Never mind."}, headers=auth(key))
    deleter.join()
    assert response.status_code == 404 and "was deleted" in response.get_json()["error"]["message"]


def test_more_waiting_requests_than_allowed_get_503_and_nothing_is_stored(make_app):
    settings, app = make_app(SYNC_WAIT_S="10", SYNC_MAX_WAITING="1")
    key = create_key(settings, "alice")
    first = threading.Thread(target=lambda: app.test_client().post("/generate_audio", json={"text": "First."}, headers=auth(key)))
    first.start()
    while stored_jobs(app) == 0:
        time.sleep(0.02)

    for path, body in [("/generate_audio", {"text": "Second."}), ("/v1/audio/speech", SPEECH)]:
        response = app.test_client().post(path, json=body, headers=auth(key))
        assert response.status_code == 503 and response.headers["Retry-After"] == "5"
    assert stored_jobs(app) == 1 and published_messages(settings) == 1
    PlayingWorker(app).join()
    first.join()
    PlayingWorker(app)  # the slot is free again
    assert app.test_client().post("/generate_audio", json={"text": "Third."}, headers=auth(key)).status_code == 200


@pytest.mark.parametrize(
    "path, body, field",
    [
        ("/generate_audio", {}, "text"),
        ("/generate_audio", {"text": "x" * 201}, "text"),
        ("/generate_audio", {"text": "hi", "format": "aac"}, "format"),
        ("/generate_audio", {"text": "hi", "speaker": "one"}, "speaker"),
        ("/generate_audio", {"text": "hi", "voice": "nobody"}, "voice"),
        ("/generate_audio", {"text": "hi", "webhook_url": "https://example.com/hook"}, "webhook_url"),
        ("/v1/generate_audio", {"text": "hi", "colour": "blue"}, "colour"),
    ],
)
def test_bad_input_to_generate_audio_is_422_naming_the_field(impatient_app, path, body, field):
    settings, app = impatient_app
    response = app.test_client().post(path, json=body, headers=auth(create_key(settings, "alice")))
    assert response.status_code == 422
    assert response.get_json()["error"]["field"] == field
    assert stored_jobs(app) == 0 and published_messages(settings) == 0


@pytest.mark.parametrize(
    "change, param, code",
    [
        ({"model": None}, "model", "invalid_field"),
        ({"model": "whisper-1"}, "model", "invalid_field"),
        ({"input": None}, "input", "invalid_field"),
        ({"input": "x" * 201}, "input", "invalid_field"),
        ({"voice": None}, "voice", "invalid_field"),
        ({"voice": "nobody"}, "voice", "invalid_field"),
        ({"voice": "1001"}, "voice", "invalid_field"),
        ({"response_format": "aac"}, "response_format", "unsupported_format"),
        ({"response_format": "ogg"}, "response_format", "invalid_field"),
        ({"speed": 1.25}, "speed", "unsupported_speed"),
        ({"speed": "fast"}, "speed", "invalid_field"),
        ({"stream_format": "sse"}, "stream_format", "unsupported_stream_format"),
        ({"instructions": 5}, "instructions", "invalid_field"),
        ({"seed": -1}, "seed", "invalid_field"),
        ({"temperature": 0}, "temperature", "invalid_field"),
        ({"colour": "blue"}, "colour", "invalid_field"),
    ],
)
def test_bad_input_to_speech_is_400_in_openais_shape(impatient_app, change, param, code):
    settings, app = impatient_app
    body = {name: value for name, value in (SPEECH | change).items() if value is not None}
    response = app.test_client().post("/v1/audio/speech", json=body, headers=auth(create_key(settings, "alice")))
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["message"]
    assert (error["type"], error["param"], error["code"]) == ("invalid_request_error", param, code)
    assert stored_jobs(app) == 0 and published_messages(settings) == 0


def test_malformed_speech_bodies_use_openais_shape(impatient_app):
    settings, app = impatient_app
    key = create_key(settings, "alice")
    client = app.test_client()
    not_json = client.post("/v1/audio/speech", data="input=hi", content_type="text/plain", headers=auth(key))
    assert not_json.status_code == 415 and not_json.get_json()["error"]["type"] == "invalid_request_error"
    a_list = client.post("/v1/audio/speech", json=["hi"], headers=auth(key))
    assert a_list.status_code == 400 and a_list.get_json()["error"]["type"] == "invalid_request_error"
    assert stored_jobs(app) == 0


def test_keys_are_required_and_each_route_answers_in_its_shape(impatient_app):
    _settings, app = impatient_app
    client = app.test_client()
    legacy = client.post("/generate_audio", json={"text": "hi"})
    assert legacy.status_code == 401 and legacy.get_json()["error"]["code"] == "unauthorized"
    for method, path in [("post", "/v1/audio/speech"), ("get", "/v1/models"), ("get", "/v1/audio/voices")]:
        response = getattr(client, method)(path, json=SPEECH, headers={"Authorization": "Bearer wrong"})
        assert response.status_code == 401
        assert response.get_json()["error"]["type"] == "invalid_request_error"
    assert stored_jobs(app) == 0


def test_voices_resolve_to_a_stored_voice_a_speaker_number_or_an_openai_name(make_app):
    settings, app = make_app(SYNC_WAIT_S="0.05", OPENAI_VOICES="alloy=7,echo=1")
    key = create_key(settings, "alice")
    client = app.test_client()
    assert upload_voice(client, key, name="echo").status_code == 201  # the key's own voice wins
    for voice in ("alloy", "42", "echo"):
        body = SPEECH | {"voice": voice, "instructions": "Speak slowly."}  # instructions: accepted, ignored
        assert client.post("/v1/audio/speech", json=body, headers=auth(key)).status_code == 504
    with app.extensions["csm_batch"].sessions() as session:
        lines = session.execute(select(JobLine.speaker, JobLine.voice).join(Job).order_by(Job.created_at)).all()
    assert [tuple(line) for line in lines] == [(7, None), (42, None), (0, "echo")]

    voices = client.get("/v1/audio/voices", headers=auth(key)).get_json()["voices"]
    assert voices == [{"id": "echo", "name": "echo"}, {"id": "alloy", "name": "alloy"}]


def test_models_in_openais_shape(impatient_app):
    settings, app = impatient_app
    key = create_key(settings, "alice")
    client = app.test_client()
    listing = client.get("/v1/models", headers=auth(key)).get_json()
    assert listing["object"] == "list"
    assert [model["id"] for model in listing["data"]] == ["csm-1b", "tts-1", "tts-1-hd", "gpt-4o-mini-tts"]
    one = client.get("/v1/models/tts-1-hd", headers=auth(key)).get_json()
    assert set(one) == {"id", "object", "created", "owned_by"} and one["object"] == "model"
    missing = client.get("/v1/models/whisper-1", headers=auth(key))
    assert missing.status_code == 404 and missing.get_json()["error"]["code"] == "model_not_found"
