"""The whole pipeline on real components: the API over HTTP, a Celery worker process with the
tiny model, Redis, PostgreSQL and an S3 server (the `stack` fixture); and the same flow on the
embedded default."""
import hashlib
import io
import subprocess
import sys
import wave
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import soundfile
from sqlalchemy import update

from support import ROOT, TIMEOUT_S, demo_environment, job_request_of, wait_until_done
from jobs import repository
from jobs.db import make_engine, make_session_factory
from jobs.keys import find_key
from jobs.models import Job, utcnow
from jobs.queue import RENDER_QUEUE

def check_wav(data: bytes, result: dict) -> None:
    assert result["bytes"] == len(data) and result["sha256"] == hashlib.sha256(data).hexdigest()
    with wave.open(io.BytesIO(data)) as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (1, 2, 24_000)
        assert result["sample_rate"] == 24_000
        assert result["duration_ms"] == round(wav.getnframes() * 1000 / 24_000) > 0


def test_submit_poll_download(stack):
    client = stack.client
    submitted = client.post(
        f"{stack.base}/v1/jobs", json={"text": "Hello from the pipeline.", "max_audio_length_ms": 640, "seed": 5}
    )
    assert submitted.status_code == 202
    job = wait_until_done(client, stack.base + submitted.headers["Location"])
    assert job["status"] == "succeeded", job
    assert job["attempts"] == 1 and job["started_at"] and job["finished_at"] and job["error"] is None

    audio = client.get(stack.local(job["result"]["audio_url"]), timeout=30)
    assert audio.status_code == 200
    assert audio.history[0].status_code == 302
    assert urlsplit(audio.url).hostname == "localhost"  # presigned for the public endpoint
    check_wav(audio.content, job["result"])
    assert job["result"]["duration_ms"] <= 640


def test_a_job_in_opus_downloads_as_opus(stack):
    client = stack.client
    submitted = client.post(
        f"{stack.base}/v1/jobs", json={"text": "Compressed, please.", "max_audio_length_ms": 400, "format": "opus"}
    )
    job = wait_until_done(client, stack.base + submitted.headers["Location"])
    assert (job["status"], job["format"]) == ("succeeded", "opus"), job
    audio = client.get(stack.local(job["result"]["audio_url"]), timeout=30)
    assert audio.headers["Content-Type"] == "audio/ogg"
    # The presigned URL asks S3 to name the file (moto does not echo the header back).
    disposition = parse_qs(urlsplit(audio.history[0].headers["Location"]).query)["response-content-disposition"]
    assert disposition == [f'attachment; filename="{job["id"]}.opus"']
    assert job["result"]["bytes"] == len(audio.content)
    assert job["result"]["sha256"] == hashlib.sha256(audio.content).hexdigest()
    info = soundfile.info(io.BytesIO(audio.content))
    assert (info.format, info.subtype, info.samplerate, info.channels) == ("OGG", "OPUS", 24_000, 1)
    assert job["result"]["duration_ms"] == round(info.frames * 1000 / 24_000)


def test_the_sweeper_requeues_a_job_whose_message_was_lost(stack):
    sessions = make_session_factory(make_engine(stack.environ["DATABASE_URL"]))
    with sessions.begin() as session:
        key_id = find_key(session, stack.key).id
        request = job_request_of({"text": "Lost and found.", "max_audio_length_ms": 320})
        job = repository.create_job(session, key_id, request, queue=RENDER_QUEUE)
        # Never published, and enqueued long ago: only the sweeper can find it.
        session.execute(update(Job).where(Job.id == job.id).values(enqueued_at=utcnow() - timedelta(minutes=5)))
    found = wait_until_done(stack.client, f"{stack.base}/v1/jobs/{job.id}")
    assert found["status"] == "succeeded"


def test_the_embedded_demo_renders_the_example_conversation(tmp_path, tiny_model_dir):
    out = tmp_path / "out"
    run = subprocess.Popen(
        [sys.executable, "-m", "cli", "demo", "--out", str(out)], cwd=ROOT,
        env=demo_environment(tmp_path / "data", str(tiny_model_dir)), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )
    try:
        stdout, stderr = run.communicate(timeout=TIMEOUT_S * 2)
    except subprocess.TimeoutExpired:
        run.terminate()  # not kill: on SIGTERM the demo stops its API and worker too
        stdout, stderr = run.communicate(timeout=90)
    assert run.returncode == 0, stdout + stderr
    names = sorted(path.relative_to(out).as_posix() for path in out.rglob("*") if path.is_file())
    assert names == [
        "conversation.wav", "conversation/line-000.wav", "conversation/line-001.wav", "conversation/line-002.wav",
        "conversation/manifest.json",
    ]
    for name in names[:-1]:
        with wave.open(str(out / name)) as wav:
            assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (1, 2, 24_000)
            assert wav.getnframes() > 0
    assert "succeeded in" in stdout and "conversation.wav" in stdout
