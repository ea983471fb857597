"""The render pipeline in process, on the real tiny model, a real database and S3 server."""
import hashlib
import io
import uuid
import wave

import pytest

from conftest import make_settings, s3_client, s3_environment
from jobs import repository
from jobs.keys import create_key
from jobs.models import Job
from jobs.resource import audio_key
from jobs.validation import parse_job_request
from worker import render
from worker.runtime import Runtime


class CountingGenerator:
    """The real generator, counting how often it renders."""

    def __init__(self, generator):
        self.generator = generator
        self.sample_rate = generator.sample_rate
        self.calls = 0

    def generate(self, *args, **kwargs):
        self.calls += 1
        return self.generator.generate(*args, **kwargs)


@pytest.fixture
def runtime(database_url, sessions, s3_endpoint, s3_bucket, tiny_generator, tmp_path):
    settings = make_settings(
        CSM_DATA_DIR=str(tmp_path), DATABASE_URL=database_url, **s3_environment(s3_endpoint, s3_bucket)
    )
    from storage import make_store

    return Runtime(settings=settings, sessions=sessions, store=make_store(settings), generator=CountingGenerator(tiny_generator))


def submit(runtime, **fields) -> uuid.UUID:
    body = {"text": "Hello from the worker.", "max_audio_length_ms": 400, "seed": 3} | fields
    with runtime.sessions.begin() as session:
        owner, _ = create_key(session, "owner")
        return repository.create_job(session, owner.id, parse_job_request(body, max_text_chars=10_000)).id


def row(runtime, job_id) -> Job:
    with runtime.sessions() as session:
        return session.get(Job, job_id)


def test_a_redelivered_task_renders_once_and_finishes_once(runtime):
    job_id = submit(runtime)
    assert render.render_job(job_id, runtime).status == "succeeded"
    first = row(runtime, job_id)
    stored = s3_client(runtime.settings.s3_endpoint_url).head_object(Bucket=runtime.settings.s3_bucket, Key=audio_key(job_id))

    assert render.render_job(job_id, runtime).status == "skipped"
    second = row(runtime, job_id)
    again = s3_client(runtime.settings.s3_endpoint_url).head_object(Bucket=runtime.settings.s3_bucket, Key=audio_key(job_id))
    assert runtime.generator.calls == 1
    assert (second.status, second.finished_at, second.attempts) == ("succeeded", first.finished_at, 1)
    assert again["LastModified"] == stored["LastModified"] and again["ETag"] == stored["ETag"]


def test_the_stored_wav_matches_the_row(runtime):
    job_id = submit(runtime)
    render.render_job(job_id, runtime)
    job = row(runtime, job_id)
    data = runtime.store.open(job.audio_key).read()
    assert job.audio_key == f"jobs/{job_id}/audio.wav"
    assert (job.audio_bytes, job.audio_sha256) == (len(data), hashlib.sha256(data).hexdigest())
    with wave.open(io.BytesIO(data)) as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (1, 2, 24_000)
        assert job.duration_ms == round(wav.getnframes() * 1000 / 24_000)
    assert 0 < job.duration_ms <= 400


def test_the_same_seed_renders_the_same_bytes(runtime):
    first, second = submit(runtime, seed=11), submit(runtime, seed=11)
    for job_id in (first, second):
        render.render_job(job_id, runtime)
    assert row(runtime, first).audio_sha256 == row(runtime, second).audio_sha256


def test_input_the_engine_rejects_fails_the_job_with_a_reason(runtime):
    job_id = submit(runtime, text="word " * 1000, max_audio_length_ms=90_000)
    assert render.render_job(job_id, runtime).status == "failed"
    job = row(runtime, job_id)
    assert job.status == "failed" and job.error_code == "invalid_input" and job.error_message


def test_a_storage_outage_gives_the_job_back_then_fails_after_the_last_attempt(runtime, s3_endpoint):
    broken = make_settings(
        CSM_DATA_DIR=str(runtime.settings.data_dir), MAX_ATTEMPTS="2",
        **s3_environment(s3_endpoint, "no-such-bucket"),
    )
    from storage import make_store

    runtime = Runtime(broken, runtime.sessions, make_store(broken), runtime.generator)
    job_id = submit(runtime)
    with pytest.raises(render.RetryLater):
        render.render_job(job_id, runtime)
    assert row(runtime, job_id).status == "queued"
    assert render.render_job(job_id, runtime).status == "failed"
    job = row(runtime, job_id)
    assert (job.status, job.error_code, job.attempts) == ("failed", "storage_unavailable", 2)
