"""Existing clients, unchanged, against the real stack (the `stack` fixture: the API over HTTP, a
Celery worker process with the tiny model, Redis, PostgreSQL, an S3 server): the official
`openai` SDK on /v1/audio/speech, and the original deployment's sample client on
/generate_audio."""
import base64
import io
import statistics
import time
import uuid
import wave

import openai
import pytest
import requests
import soundfile
from sqlalchemy import select

from jobs.db import make_engine, make_session_factory
from jobs.models import Job

TEXT = "Hello from a client that did not change."


@pytest.fixture
def sdk(stack) -> openai.OpenAI:
    return openai.OpenAI(api_key=stack.key, base_url=f"{stack.base}/v1", max_retries=0, timeout=180)


def job_of(stack, response) -> dict:
    return stack.client.get(f"{stack.base}/v1/jobs/{response.headers['X-Job-Id']}", timeout=10).json()


@pytest.mark.parametrize("response_format, container", [("wav", "WAV"), ("mp3", "MP3")])
def test_the_openai_sdk_gets_24_khz_mono_audio_of_the_jobs_length(stack, sdk, response_format, container):
    raw = sdk.audio.speech.with_raw_response.create(
        model="tts-1", voice="alloy", input=TEXT, response_format=response_format,
        extra_body={"max_audio_length_ms": 800, "seed": 3},
    )
    assert raw.status_code == 200 and raw.headers["Content-Type"] == {"wav": "audio/wav", "mp3": "audio/mpeg"}[response_format]
    audio = raw.parse().content
    decoded, rate = soundfile.read(io.BytesIO(audio), dtype="float32")
    info = soundfile.info(io.BytesIO(audio))
    assert (info.format, rate, decoded.ndim) == (container, 24_000, 1)
    job = job_of(stack, raw)  # the request was an ordinary job, stored and pollable
    assert (job["status"], job["format"], job["result"]["bytes"]) == ("succeeded", response_format, len(audio))
    assert job["result"]["duration_ms"] == round(decoded.shape[0] * 1000 / 24_000)
    assert 0 < job["result"]["duration_ms"] <= 800


def test_the_openai_sdk_streams_a_playable_file(stack, sdk, tmp_path):
    target = tmp_path / "speech.mp3"
    with sdk.audio.speech.with_streaming_response.create(
        model="gpt-4o-mini-tts", voice="1", input=TEXT, instructions="Cheerful.",
        extra_body={"max_audio_length_ms": 480},
    ) as response:
        response.stream_to_file(target)
    info = soundfile.info(str(target))
    assert (info.format, info.samplerate, info.channels) == ("MP3", 24_000, 1) and info.frames > 0


def test_the_openai_sdk_raises_its_errors(stack, sdk):
    wrong_key = openai.OpenAI(api_key="not-a-key", base_url=f"{stack.base}/v1", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        wrong_key.audio.speech.create(model="tts-1", voice="alloy", input=TEXT)
    with pytest.raises(openai.BadRequestError) as too_long:
        sdk.audio.speech.create(model="tts-1", voice="alloy", input="x" * 2_001)  # MAX_TEXT_CHARS is 2000
    assert too_long.value.body["param"] == "input"
    with pytest.raises(openai.BadRequestError):
        sdk.audio.speech.create(model="tts-1", voice="alloy", input=TEXT, speed=1.5)
    models = [model.id for model in sdk.models.list()]
    assert "csm-1b" in models and "tts-1" in models


def test_the_original_deployments_sample_client_writes_a_wav(stack, tmp_path):
    endpoint = f"{stack.base}/generate_audio"  # the one change: endpoint and token
    token = stack.key
    # --- the sample client, as its users run it ---
    payload = {"text": "Hi there."}  # short: the length cap grows with the text
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    response = requests.post(endpoint, json=payload, headers=headers)
    assert response.status_code == 200, response.text  # (not in the sample)
    audio_data = base64.b64decode(response.json()["result"]["audio_data"])
    with open(tmp_path / "output.wav", "wb") as f:
        f.write(audio_data)
    # ---
    with wave.open(str(tmp_path / "output.wav")) as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (1, 2, 24_000)
        assert wav.getnframes() > 0
    body = response.json()
    assert body["result"]["format"] == "wav" and body["result"]["encoding"] == "base64" and body["run_time_ms"] > 0
    job = stack.client.get(f"{stack.base}/v1/jobs/{body['run_id']}", timeout=10).json()
    assert job["status"] == "succeeded" and job["result"]["bytes"] == len(audio_data)


def test_a_synchronous_request_overtakes_a_running_200_row_batch(stack, sdk):
    """The request's job starts in the first GPU batch after it arrives: no job of the CSV batch
    starts in between. Prints the measured wait against the GPU batch time (pytest -s)."""
    client = stack.client
    rows = "".join(f"Row number {i}.,{i % 2},160\n" for i in range(200))
    created = client.post(
        f"{stack.base}/v1/batches", data=("text,speaker,max_audio_length_ms\n" + rows).encode(),
        headers={"Content-Type": "text/csv"}, timeout=60,
    )
    assert created.status_code == 202, created.text
    batch_url = stack.base + created.headers["Location"]
    deadline = time.monotonic() + 300
    while client.get(batch_url, timeout=10).json()["jobs_done"] < 16:  # the batch is well under way
        assert time.monotonic() < deadline, "the batch did not start"
        time.sleep(0.2)

    started = time.monotonic()
    raw = sdk.audio.speech.with_raw_response.create(
        model="csm-1b", voice="0", input="Me first, please.", response_format="wav",
        extra_body={"max_audio_length_ms": 160},
    )
    request_s = time.monotonic() - started
    assert raw.status_code == 200

    engine = make_engine(stack.environ["DATABASE_URL"])
    with make_session_factory(engine)() as session:
        waited = session.get(Job, uuid.UUID(raw.headers["X-Job-Id"]))
        batch_jobs = session.execute(
            select(Job.started_at, Job.finished_at).where(Job.batch_id == uuid.UUID(created.json()["id"]))
        ).all()
    engine.dispose()
    overtaken_by = [job for job in batch_jobs if job.started_at and waited.created_at < job.started_at < waited.started_at]
    assert overtaken_by == []

    gpu_batches = _gpu_batch_seconds([job for job in batch_jobs if job.finished_at])
    print(
        f"\nsync_request_s={request_s:.2f} sync_queued_s={(waited.started_at - waited.created_at).total_seconds():.2f} "
        f"gpu_batch_s_median={statistics.median(gpu_batches):.2f} gpu_batch_s_max={max(gpu_batches):.2f} "
        f"gpu_batches_timed={len(gpu_batches)}"
    )
    # Free the worker for the other tests.
    while queued := client.get(f"{stack.base}/v1/jobs?status=queued&limit=100", timeout=10).json()["jobs"]:
        for job in queued:
            client.post(f"{stack.base}/v1/jobs/{job['id']}/cancel", timeout=10)


def _gpu_batch_seconds(jobs) -> list[float]:
    """Jobs claimed together start within moments of each other: each group is one GPU batch."""
    groups: list[list] = []
    for job in sorted(jobs, key=lambda job: job.started_at):
        if groups and (job.started_at - groups[-1][0].started_at).total_seconds() < 0.5:
            groups[-1].append(job)
        else:
            groups.append([job])
    return [(max(j.finished_at for j in group) - group[0].started_at).total_seconds() for group in groups]
