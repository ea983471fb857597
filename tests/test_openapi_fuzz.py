"""Schemathesis against the live service (API over HTTP, a worker with the tiny model, Redis,
PostgreSQL, an S3 server): every route of GET /openapi.json with generated valid and invalid
requests, then stateful runs along the document's links (submit a job, then get, cancel,
download or delete it). No server error but a deliberate 503, and no answer the document does not
describe, may come back."""
import os
import subprocess
import sys

import pytest

from support import ROOT, make_settings, run_worker, serve_api, service_environ, s3_client
from provision import create_key

CONFIG = ROOT / "tests" / "schemathesis.toml"
RUN_LIMIT_S = 600  # about a minute here; a hang fails instead of stalling the suite


@pytest.fixture(scope="module")
def service(tmp_path_factory, tiny_model_dir, postgres_database, s3_endpoint):
    data_dir = tmp_path_factory.mktemp("fuzz")
    s3_client(s3_endpoint).create_bucket(Bucket="fuzz")
    # One job at a time, so a synchronous request waits for one render at most.
    environ = service_environ(
        data_dir, postgres_database(), s3_endpoint, "fuzz", tiny_model_dir, WORKER_BATCH_SIZE="1", SYNC_WAIT_S="300"
    )
    settings = make_settings(**environ)
    with serve_api(settings) as base, run_worker(environ, data_dir / "worker.log"):
        yield base, create_key(settings, "fuzz")


def test_no_server_error_and_every_answer_as_documented(service, tmp_path):
    base, key = service
    command = [sys.executable, "-m", "schemathesis.cli", "--config-file", str(CONFIG), "run", f"{base}/openapi.json"]
    result = subprocess.run(  # in tmp_path, where it keeps its cache of failures
        command, cwd=tmp_path, env={**os.environ, "CSM_API_KEY": key}, capture_output=True, text=True,
        timeout=RUN_LIMIT_S,
    )
    print(result.stdout[-4_000:])  # the run's summary (pytest -s or -rP shows it)
    assert result.returncode == 0, result.stdout[-30_000:] + result.stderr[-5_000:]
