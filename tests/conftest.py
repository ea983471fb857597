"""Shared fixtures: real PostgreSQL, SQLite, an S3 server on loopback; the tiny model from tests/csm."""
from __future__ import annotations

import secrets

import psycopg
import pytest
from sqlalchemy import text

from support import PUBLIC_API_URL, Stack, free_port, free_redis_db, make_settings, run_worker, s3_client, s3_environment, serve_api  # first: it puts the project on sys.path

from provision import create_key, migrate
from jobs.db import make_engine, make_session_factory
from tests.csm.conftest import one_torch_thread, tiny_generator, tiny_model_dir  # noqa: F401  the engine's fixtures

POSTGRES_ADMIN_URL = "postgresql://root@127.0.0.1:5432/test"


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


@pytest.fixture
def s3_bucket(s3_endpoint) -> str:
    bucket = f"test-{secrets.token_hex(4)}"
    s3_client(s3_endpoint).create_bucket(Bucket=bucket)
    return bucket


# --- the service end to end ----------------------------------------------------------------

@pytest.fixture(scope="session")
def stack(tmp_path_factory, tiny_model_dir, postgres_database, s3_endpoint):
    """The service on real components: API over HTTP, one worker process (with its sweeper),
    Redis, PostgreSQL and an S3 server; shared by the end-to-end tests."""
    data_dir = tmp_path_factory.mktemp("stack")
    bucket = "e2e-audio"
    s3_client(s3_endpoint).create_bucket(Bucket=bucket)
    environ = {
        "CSM_DATA_DIR": str(data_dir),
        "DATABASE_URL": postgres_database(),
        "BROKER_URL": free_redis_db(),
        **s3_environment(s3_endpoint, bucket),
        "CSM_MODEL": str(tiny_model_dir),
        "CSM_DEVICE": "cpu",
        # A quick sweeper and short leases, so that lost work is found within seconds.
        "SWEEP_INTERVAL_S": "1",
        "REQUEUE_AFTER_S": "3",
        "LEASE_S": "3",
        # Webhooks to a loopback receiver (the explicit opt-in), retried within moments.
        "WEBHOOK_ALLOW_PRIVATE": "true",
        "WEBHOOK_RETRY_SCALE": "0.0005",
        "WEBHOOK_DISPATCH_INTERVAL_S": "0.3",
        "PUBLIC_API_URL": PUBLIC_API_URL,
        "LOG_FORMAT": "json",  # the worker's log is read as JSON lines (tests/test_logs.py)
        "WORKER_METRICS_PORT": str(metrics_port := free_port()),
        "PROMETHEUS_MULTIPROC_DIR": str(data_dir / "metrics"),
        # Synchronous requests wait for a CPU worker, which may be slow on a busy machine.
        "SYNC_WAIT_S": "600",
    }
    settings = make_settings(**environ)
    log = data_dir / "worker.log"
    with serve_api(settings) as base, run_worker(environ, log, "--beat"):
        yield Stack(
            base=base, key=create_key(settings, "e2e"), environ=environ, worker_log=log,
            worker_metrics=f"http://127.0.0.1:{metrics_port}/metrics",
        )
