"""Outages on real servers: Redis, PostgreSQL and the S3 server each behind a FaultProxy; the API
over HTTP and real Celery worker processes talk to them only through it.

Every case adds a line to REPORT (jobs, terminal states, time to recover, API status codes
seen); pytest prints them at the end of the run.
"""
from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from support import free_redis_db, make_settings, s3_client, s3_environment, serve_api
from provision import create_key
from faults_support import FAST, REPORT, Outage, through
from proxy import FaultProxy


def pytest_terminal_summary(terminalreporter):
    if REPORT:
        terminalreporter.section("fault cases")
        for line in REPORT:
            terminalreporter.write_line(line)


@pytest.fixture(scope="module")
def broker_url() -> str:
    return free_redis_db()


@pytest.fixture(scope="module")
def proxies(s3_endpoint, broker_url):
    redis, s3 = urlsplit(broker_url), urlsplit(s3_endpoint)
    started = {
        "redis": FaultProxy(redis.hostname, redis.port).start(),
        "postgresql": FaultProxy("127.0.0.1", 5432).start(),
        "s3": FaultProxy(s3.hostname, s3.port).start(),
    }
    yield started
    for proxy in started.values():
        proxy.stop()


@pytest.fixture(scope="module")
def outage_environ(tmp_path_factory, tiny_model_dir, postgres_database, s3_endpoint, proxies, broker_url):
    database_url = postgres_database()
    bucket = "outage-audio"
    s3_client(s3_endpoint).create_bucket(Bucket=bucket)
    environ = {
        "CSM_DATA_DIR": str(tmp_path_factory.mktemp("outage")),
        "CSM_MODEL": str(tiny_model_dir),
        "DATABASE_URL": through(database_url, proxies["postgresql"]),
        "BROKER_URL": through(broker_url, proxies["redis"]),
        **s3_environment(s3_endpoint, bucket),
        "S3_ENDPOINT_URL": through(s3_endpoint, proxies["s3"]),
        **FAST,
    }
    return environ, database_url, bucket


@pytest.fixture(scope="module")
def outage_api(outage_environ, proxies, s3_endpoint):
    environ, database_url, bucket = outage_environ
    settings = make_settings(**environ)
    with serve_api(settings) as base:
        yield Outage(
            base=base, key=create_key(settings, "outages"), environ=environ, proxies=proxies,
            direct_database_url=database_url, bucket=bucket, s3_endpoint=s3_endpoint,
        )
