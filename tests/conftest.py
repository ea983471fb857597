"""Shared fixtures: real PostgreSQL, SQLite, Redis, an S3 server on loopback, the tiny model,
the API over HTTP and Celery worker processes."""
from __future__ import annotations

import itertools
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import boto3
import psycopg
import pytest
from botocore.config import Config
from sqlalchemy import text
from werkzeug.serving import make_server

ROOT = Path(__file__).resolve().parents[1]
POSTGRES_ADMIN_URL = "postgresql://root@127.0.0.1:5432/test"
REDIS_URL = "redis://127.0.0.1:6379"
S3_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "test-key", "AWS_SECRET_ACCESS_KEY": "test-secret"}

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from cli import migrate  # noqa: E402
from config import Settings  # noqa: E402
from jobs.db import make_engine, make_session_factory  # noqa: E402


# --- the tiny model -------------------------------------------------------------------------

@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A randomly initialised CSM of small size in the real on-disk formats, built once."""
    from csm.tiny import write_tiny_model

    return write_tiny_model(tmp_path_factory.mktemp("tiny-model"))


@pytest.fixture(scope="session")
def tiny_generator(tiny_model_dir, tmp_path_factory):
    """The tiny model in fp32 on the CPU, loaded once; tests must not modify it."""
    from csm import load_generator

    return load_generator(tiny_model_dir, device="cpu", cache_dir=tmp_path_factory.mktemp("csm-cache"))


# --- databases ------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def postgres_database():
    """Creates fresh, migrated PostgreSQL databases on the local server; drops them at the end."""
    created = []

    def create() -> str:
        name = f"csmb_test_{secrets.token_hex(4)}"
        with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        created.append(name)
        url = f"postgresql+psycopg://root@127.0.0.1:5432/{name}"
        migrate(url)
        return url

    yield create
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as conn:
        for name in created:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def shared_postgres_url(postgres_database) -> str:
    return postgres_database()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path, shared_postgres_url) -> str:
    """A migrated, empty database of each supported kind."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'jobs.db'}"
        migrate(url)
        return url
    engine = make_engine(shared_postgres_url)
    with engine.begin() as conn:
        conn.execute(text("TRUNCATE jobs, api_keys RESTART IDENTITY CASCADE"))
    engine.dispose()
    return shared_postgres_url


@pytest.fixture
def sessions(database_url):
    engine = make_engine(database_url)
    yield make_session_factory(engine)
    engine.dispose()


# --- object storage -------------------------------------------------------------------------

@pytest.fixture(scope="session")
def s3_endpoint() -> str:
    """A real S3-compatible HTTP server (moto) on loopback, reachable from child processes."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def s3_client(endpoint: str):
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=S3_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=S3_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
    )


@pytest.fixture
def s3_bucket(s3_endpoint) -> str:
    bucket = f"test-{secrets.token_hex(4)}"
    s3_client(s3_endpoint).create_bucket(Bucket=bucket)
    return bucket


# --- settings -------------------------------------------------------------------------------

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


# --- processes ------------------------------------------------------------------------------

@contextmanager
def serve_api(settings: Settings):
    """The real Flask app over real HTTP on a loopback port."""
    from api import create_app

    server = make_server("127.0.0.1", 0, create_app(settings), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()


def worker_command(*extra: str) -> list[str]:
    return [
        sys.executable, "-m", "celery", "-A", "worker.main:app", "worker", "--pool", "prefork",
        "--concurrency", "1", "--queues", "render", "--loglevel", "INFO", *extra,
    ]


@contextmanager
def run_worker(environ: dict[str, str], log_path: Path, *extra: str):
    """A real Celery worker process (own session, so a test can kill its whole group)."""
    env = {**os.environ, **environ, "PYTHONUNBUFFERED": "1"}
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            worker_command(*extra), cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
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


_redis_numbers = itertools.count(1)


def free_redis_db() -> str:
    """A Redis database number of its own for each use (1 to 15), emptied first."""
    import redis

    number = next(_redis_numbers)
    assert number < 16, "more Redis databases than the server has"
    client = redis.Redis.from_url(f"{REDIS_URL}/{number}")
    client.flushdb()
    client.close()
    return f"{REDIS_URL}/{number}"
