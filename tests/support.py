"""Helpers shared by the tests: settings, S3 clients, the API server and worker processes."""
from __future__ import annotations

import atexit
import io
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
import wave
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import boto3
import numpy as np
import requests
import soundfile
from botocore.config import Config
from werkzeug.serving import make_server

ROOT = Path(__file__).resolve().parents[1]
# TEST_REDIS_URL lets two test runs on one machine use separate Redis servers.
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379")
TIMEOUT_S = 180
PUBLIC_API_URL = "http://api.example.test"  # the API address the test services advertise
S3_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "test-key", "AWS_SECRET_ACCESS_KEY": "test-secret"}

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from config import Settings  # noqa: E402
from jobs.queue import ALL_QUEUES  # noqa: E402


def s3_client(endpoint: str):
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=S3_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=S3_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
    )


def make_settings(**environ: str) -> Settings:
    return Settings.from_env(environ)


def s3_environment(endpoint: str, bucket: str) -> dict[str, str]:
    # Clients reach the store as "localhost", the service as 127.0.0.1: presigned URLs
    # must be signed for the public name.
    public = endpoint.replace("127.0.0.1", "localhost")
    return {
        "S3_BUCKET": bucket,
        "S3_ENDPOINT_URL": endpoint,
        "S3_PUBLIC_ENDPOINT_URL": public,
        **S3_CREDENTIALS,
    }


def service_environ(data_dir, database_url: str, s3_endpoint: str, bucket: str, model_dir, **extra: str) -> dict:
    """The environment of an API and a worker on a fresh Redis database, an S3 bucket and the tiny model."""
    return {
        "CSM_DATA_DIR": str(data_dir),
        "DATABASE_URL": database_url,
        "BROKER_URL": free_redis_db(),
        **s3_environment(s3_endpoint, bucket),
        "CSM_MODEL": str(model_dir),
        "CSM_DEVICE": "cpu",
        **extra,
    }


@contextmanager
def serve_api(settings: Settings):
    """The real Flask app over real HTTP on a loopback port."""
    from api import create_app

    with serving(make_server("127.0.0.1", 0, create_app(settings), threaded=True)) as base:
        yield base


@contextmanager
def serving(server):
    """Runs a loopback HTTP server (werkzeug's or http.server's) in a daemon thread; its base URL."""
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


def worker_command(
    *extra: str, app: str = "worker.main:app", queues: tuple[str, ...] = ALL_QUEUES, concurrency: int = 1
) -> list[str]:
    return [
        sys.executable, "-m", "celery", "-A", app, "worker", "--pool", "prefork",
        "--concurrency", str(concurrency), "--queues", ",".join(queues), "--loglevel", "INFO", *extra,
    ]


@contextmanager
def run_worker(environ: dict[str, str], log_path: Path, *extra: str, **command):
    """A real Celery worker process (own session, so a test can kill its whole group);
    `command`: worker_command's app, queues and concurrency."""
    env = {**os.environ, **environ, "PYTHONUNBUFFERED": "1"}
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            worker_command(*extra, **command), cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_for_log(log_path, "ready.", process)
        yield process
    finally:
        if process.poll() is None:
            process.terminate()  # the main process only: a warm shutdown
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def wait_for_log(log_path: Path, needle: str, process: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if needle in log_path.read_text(errors="replace"):
            return
        if process.poll() is not None:
            raise RuntimeError(f"worker exited early:\n{log_path.read_text(errors='replace')[-4000:]}")
        time.sleep(0.2)
    raise TimeoutError(f"{needle!r} not in {log_path} after {timeout} s")


def wav_bytes(seconds: float, rate: int = 16_000, channels: int = 1) -> bytes:
    """A 16-bit PCM WAV of `seconds` (a voice recording to upload)."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(channels)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(b"\x00\x01" * int(seconds * rate) * channels)
    return buffer.getvalue()


def metric_samples(text: str) -> dict[tuple[str, frozenset], float]:
    """Prometheus' text format, parsed: {(sample name, frozenset of its labels): value}."""
    from prometheus_client.parser import text_string_to_metric_families

    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def free_port() -> int:
    """A loopback TCP port nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _redis_databases():
    """Database numbers 1 to 15 of the test Redis, then of extra servers started on free ports: each
    stack gets a broker of its own however many a run starts."""
    base = REDIS_URL
    while True:
        for number in range(1, 16):
            yield f"{base}/{number}"
        port = free_port()
        server = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                   "--appendonly", "no"], stdout=subprocess.DEVNULL)
        atexit.register(server.kill)
        base = f"redis://127.0.0.1:{port}"
        _wait_until_listening(port)


def _wait_until_listening(port: int, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


_redis_urls = _redis_databases()


def free_redis_db() -> str:
    """A Redis database of its own for each use, emptied first."""
    import redis

    url = next(_redis_urls)
    client = redis.Redis.from_url(url)
    client.flushdb()
    client.close()
    return url


def job_request_of(body: dict, *, max_text_chars: int = 100, any_voice: bool = False):
    """A JSON job body checked as POST /v1/jobs checks it; `any_voice`: every voice name exists
    (else none does)."""
    from jobs.fields import Context, validate
    from jobs.validation import JobBody, job_request

    return job_request(validate(JobBody, body, Context(max_text_chars, voice_exists=lambda name: any_voice)).root)


def queue_csv_batch(sessions, owner: int, rows: int, *, scripts: int = 0, age_s: float = 3600) -> list:
    """A CSV batch of `rows` texts and `scripts` one-line scripts, its jobs queued `age_s` ago."""
    from datetime import timedelta

    from sqlalchemy import select, update

    from jobs import repository
    from jobs.csv_batch import parse_batch_csv
    from jobs.models import Job, utcnow

    csv = "text,script,speaker\n" + "".join(f"text {i},,\n" for i in range(rows))
    csv += "".join(f"line,scene-{i},0\n" for i in range(scripts))
    plan = parse_batch_csv(csv.encode(), max_text_chars=100, voice_exists=lambda name: False)
    with sessions.begin() as session:
        batch = repository.create_batch(session, owner, list(plan.jobs), queue="batch", filename=None)
        queued_at = utcnow() - timedelta(seconds=age_s)
        session.execute(update(Job).where(Job.batch_id == batch.id).values(enqueued_at=queued_at))
        return list(session.scalars(select(Job).where(Job.batch_id == batch.id).order_by(Job.batch_line)))


def finish_with_outputs(sessions, store, job_id, finished_ago_s: float = 0) -> list[str]:
    """Claims a queued job and finishes it as a worker would, every output stored (a line's
    audio per line of a script, then its audio and manifest), `finished_ago_s` ago; the keys."""
    from datetime import timedelta

    from sqlalchemy import update

    from jobs import repository
    from jobs.models import Job, utcnow
    from jobs.repository import AudioResult, LineResult
    from jobs.resource import audio_key, line_key, manifest_key
    from jobs.status import LineStatus

    job_id = uuid.UUID(str(job_id))  # as the API shows it, or as the rows hold it
    with sessions.begin() as session:
        held = repository.claim_job(session, job_id, lease_s=60, max_attempts=3)
    audio = audio_key(job_id, held.token, held.format)
    lines = [line_key(job_id, held.token, line.index) for line in held.lines] if held.is_script else [audio]
    manifest = manifest_key(job_id, held.token) if held.is_script else None
    keys = sorted({*lines, audio, *filter(None, [manifest])})
    for key in keys:
        store.put(key, b"RIFF-bytes", "application/octet-stream")
    with sessions.begin() as session:
        for line, key in zip(held.lines, lines):
            repository.record_line(session, held, line.index, LineResult(LineStatus.SUCCEEDED, 1, key, 100, "0" * 64))
        repository.complete_job(session, held, AudioResult(audio, 200, 24_000, 10, "0" * 64), manifest_key=manifest)
        finished_at = utcnow() - timedelta(seconds=finished_ago_s)
        session.execute(update(Job).where(Job.id == job_id).values(finished_at=finished_at))
    return keys


def stored(store, keys: list[str]) -> list[str]:
    """Those of `keys` that the object store still holds."""
    found = []
    for key in keys:
        try:
            store.open(key).close()
            found.append(key)
        except FileNotFoundError:
            pass
    return found


def emit_webhook_events(sessions, url: str, count: int) -> list[str]:
    """`count` queued jobs of a new key, each with one due job.succeeded event for `url`."""
    from sqlalchemy import select

    from jobs import outbox, repository
    from jobs.keys import create_key
    from jobs.models import WebhookEvent

    request = job_request_of({"text": "hello"})
    with sessions.begin() as session:
        owner = create_key(session, "webhooks")[0].id
        for _ in range(count):
            job = repository.create_job(session, owner, request, queue="render")
            outbox.emit(session, owner, job.id, "job.succeeded", url)
        session.flush()
        return list(session.scalars(select(WebhookEvent.id).where(WebhookEvent.api_key_id == owner)))


def demo_environment(data_dir: Path, model: str) -> dict[str, str]:
    """The environment of `csm-batch demo` on the embedded default, whatever the tests' own."""
    services = {"DATABASE_URL", "BROKER_URL", "S3_BUCKET", "S3_ENDPOINT_URL", "S3_PUBLIC_ENDPOINT_URL"}
    env = {key: value for key, value in os.environ.items() if key not in services}
    return env | {"CSM_DATA_DIR": str(data_dir), "CSM_MODEL": model, "CSM_DEVICE": "cpu"}


@dataclass
class Stack:
    base: str
    key: str
    environ: dict
    worker_log: Path | None = None
    worker_metrics: str | None = None  # the worker's metrics URL

    def local(self, url: str) -> str:
        """A URL the service advertises (on PUBLIC_API_URL), as this test reaches it."""
        return url.replace(PUBLIC_API_URL, self.base)

    @property
    def client(self) -> requests.Session:
        client = requests.Session()
        client.headers["Authorization"] = f"Bearer {self.key}"
        return client


def schema_errors(document: dict, schema: dict, value) -> list[str]:
    """Where `value` breaks `schema`, a schema of the OpenAPI `document` (its $refs resolved there)."""
    from jsonschema import Draft202012Validator

    validator = Draft202012Validator(schema | {"components": document["components"]})
    return [f"{list(error.absolute_path)}: {error.message}" for error in validator.iter_errors(value)]


def webhook_schema(document: dict, event_type: str) -> dict:
    """The body the OpenAPI document promises for a webhook event."""
    return document["webhooks"][event_type]["post"]["requestBody"]["content"]["application/json"]["schema"]


def wait_until_done(client: requests.Session, url: str) -> dict:
    deadline = time.monotonic() + TIMEOUT_S
    while time.monotonic() < deadline:
        job = client.get(url, timeout=10).json()
        if job["status"] not in ("queued", "running"):
            return job
        time.sleep(0.3)
    raise TimeoutError(f"{url} still {job['status']} after {TIMEOUT_S} s")


def corrupt_flac() -> bytes:
    """A FLAC whose header is valid (1 s at 24 kHz) and whose frames are garbage."""
    buffer = io.BytesIO()
    noise = np.random.default_rng(0).uniform(-0.5, 0.5, 24_000).astype(np.float32)  # does not compress away
    soundfile.write(buffer, noise, 24_000, format="FLAC")
    data = bytearray(buffer.getvalue())
    data[200:] = bytes((b * 7 + 13) % 256 for b in data[200:])
    return bytes(data)
