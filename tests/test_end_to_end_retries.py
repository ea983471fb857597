"""A job given back after a storage error comes back by the worker's own wake-up once its
backoff ends: a real worker process with no sweeper running, Redis, PostgreSQL, an S3 server."""
import secrets
import time

import requests

from provision import create_key
from support import TIMEOUT_S, make_settings, run_worker, s3_client, serve_api, service_environ, wait_until_done


def test_a_job_given_back_after_a_storage_error_is_woken_when_its_backoff_ends(
    tmp_path, tiny_model_dir, postgres_database, s3_endpoint
):
    bucket = f"late-{secrets.token_hex(4)}"  # made only once the first attempt failed
    environ = service_environ(tmp_path, postgres_database(), s3_endpoint, bucket, tiny_model_dir)
    settings = make_settings(**environ)
    with serve_api(settings) as base, run_worker(environ, tmp_path / "worker.log"):  # no --beat: no sweeper
        client = requests.Session()
        client.headers["Authorization"] = f"Bearer {create_key(settings, 'retries')}"
        submitted = client.post(f"{base}/v1/jobs", json={"text": "Try again.", "max_audio_length_ms": 320}, timeout=30)
        url = base + submitted.headers["Location"]
        deadline = time.monotonic() + TIMEOUT_S
        while (job := client.get(url, timeout=10).json())["attempts"] == 0 or job["status"] != "queued":
            assert time.monotonic() < deadline, job
            time.sleep(0.2)
        s3_client(s3_endpoint).create_bucket(Bucket=bucket)
        job = wait_until_done(client, url)
    assert (job["status"], job["attempts"]) == ("succeeded", 2)
