"""Webhooks end to end: the worker finishes a job, the outbox row is delivered to a real HTTP
receiver on loopback, signed per Standard Webhooks, retried, disabled on 410, and never lost."""
import json
import os
import signal
import time

import pytest
import requests


from support import (
    PUBLIC_API_URL, free_redis_db, make_settings, run_worker, s3_environment, schema_errors, serve_api, wait_until_done,
    webhook_schema,
)
from webhook_receiver import run_receiver, verify


@pytest.fixture
def receiver():
    with run_receiver() as receiver:
        yield receiver


def submit(stack, **body) -> dict:
    response = stack.client.post(f"{stack.base}/v1/jobs", json={"text": "Webhook me.", "max_audio_length_ms": 240} | body)
    assert response.status_code == 202, response.text
    return wait_until_done(stack.client, stack.base + response.headers["Location"])


def deliveries(stack, job_id: str) -> list[dict]:
    return stack.client.get(f"{stack.base}/v1/jobs/{job_id}/deliveries").json()["deliveries"]


def test_a_finished_job_is_delivered_once_signed(stack, receiver):
    job = submit(stack, webhook_url=receiver.url("/ok"))
    (request,) = receiver.wait_for("/ok", 1)
    secret = stack.client.get(f"{stack.base}/v1/webhook-secret").json()["secret"]
    assert secret.startswith("whsec_") and verify(secret, request)
    payload = request.json
    assert payload["type"] == "job.succeeded" and payload["timestamp"]
    document = requests.get(f"{stack.base}/openapi.json", timeout=10).json()
    assert schema_errors(document, webhook_schema(document, "job.succeeded"), payload) == []
    assert payload["data"]["id"] == job["id"] and payload["data"]["status"] == "succeeded"
    assert payload["data"]["result"]["audio_url"] == f"{PUBLIC_API_URL}/v1/jobs/{job['id']}/audio"
    (event,) = deliveries(stack, job["id"])
    assert (event["id"], event["status"], event["type"]) == (request.headers["webhook-id"], "delivered", "job.succeeded")
    assert [a["status_code"] for a in event["attempts"]] == [200]
    time.sleep(1)  # no second delivery comes
    assert len(receiver.at("/ok")) == 1


def test_a_failing_receiver_gets_retries_then_one_delivery(stack, receiver):
    receiver.answers["/flaky"] = [500, 503, 500, 200]
    job = submit(stack, webhook_url=receiver.url("/flaky"))
    received = receiver.wait_for("/flaky", 4)
    assert len({r.headers["webhook-id"] for r in received}) == 1  # one event, retried
    assert len({r.body for r in received}) == 1
    deadline = time.monotonic() + 30
    while (event := deliveries(stack, job["id"])[0])["status"] != "delivered":
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert [a["status_code"] for a in event["attempts"]] == [500, 503, 500, 200]
    time.sleep(1)
    assert len(receiver.at("/flaky")) == 4


def test_410_disables_the_url_for_the_key(stack, receiver):
    receiver.answers["/gone"] = [410]
    job = submit(stack, webhook_url=receiver.url("/gone"))
    receiver.wait_for("/gone", 1)
    deadline = time.monotonic() + 30
    while (event := deliveries(stack, job["id"])[0])["status"] != "failed":
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert [a["status_code"] for a in event["attempts"]] == [410]
    refused = stack.client.post(f"{stack.base}/v1/jobs", json={"text": "again", "webhook_url": receiver.url("/gone")})
    assert refused.status_code == 422 and refused.json()["error"]["field"] == "webhook_url"


def test_rotation_sends_both_signatures_and_redelivery_keeps_the_id(stack, receiver):
    old = stack.client.get(f"{stack.base}/v1/webhook-secret").json()["secret"]
    new = stack.client.post(f"{stack.base}/v1/webhook-secret/rotate").json()
    assert new["secret"] != old and new["previous_secret_expires_at"]
    job = submit(stack, webhook_url=receiver.url("/rotating"))
    (first,) = receiver.wait_for("/rotating", 1)
    assert len(first.headers["webhook-signature"].split(" ")) == 2
    assert verify(new["secret"], first) and verify(old, first)

    event_id = first.headers["webhook-id"]
    again = stack.client.post(f"{stack.base}/v1/jobs/{job['id']}/deliveries/{event_id}/redeliver")
    assert again.status_code == 202
    second = receiver.wait_for("/rotating", 2)[1]
    assert second.headers["webhook-id"] == event_id and second.body == first.body


def test_a_batch_reports_its_completion_with_counts(stack, receiver):
    csv_body = "text,max_audio_length_ms\nOne.,160\nTwo.,160\n"
    created = stack.client.post(
        f"{stack.base}/v1/batches?webhook_url={receiver.url('/batch')}", data=csv_body,
        headers={"Content-Type": "text/csv"},
    )
    assert created.status_code == 202, created.text
    (request,) = receiver.wait_for("/batch", 1)
    payload = request.json
    assert payload["type"] == "batch.completed"
    document = requests.get(f"{stack.base}/openapi.json", timeout=10).json()
    assert schema_errors(document, webhook_schema(document, "batch.completed"), payload) == []
    assert payload["data"]["id"] == created.json()["id"] and payload["data"]["counts"] == {"succeeded": 2}


def test_a_worker_killed_after_the_status_change_still_delivers(tmp_path, tiny_model_dir, postgres_database, s3_endpoint, s3_bucket, receiver):
    environ = {
        "CSM_DATA_DIR": str(tmp_path), "DATABASE_URL": postgres_database(), "BROKER_URL": free_redis_db(),
        **s3_environment(s3_endpoint, s3_bucket), "CSM_MODEL": str(tiny_model_dir), "CSM_DEVICE": "cpu",
        "WEBHOOK_ALLOW_PRIVATE": "true", "WEBHOOK_DISPATCH_INTERVAL_S": "0.3",
    }
    settings = make_settings(**environ)
    from provision import create_key

    with serve_api(settings) as base:
        client = requests.Session()
        client.headers["Authorization"] = f"Bearer {create_key(settings, 'outbox')}"
        # Without beat nothing dispatches: the event can only wait in the outbox.
        with run_worker(environ, tmp_path / "first.log") as first:
            response = client.post(
                f"{base}/v1/jobs", json={"text": "Survive me.", "max_audio_length_ms": 160, "webhook_url": receiver.url("/outbox")}
            )
            job = wait_until_done(client, base + response.headers["Location"])
            os.killpg(first.pid, signal.SIGKILL)
            first.wait()
        assert job["status"] == "succeeded" and receiver.at("/outbox") == []
        assert [e["status"] for e in client.get(f"{base}/v1/jobs/{job['id']}/deliveries").json()["deliveries"]] == ["pending"]

        with run_worker(environ, tmp_path / "second.log", "--beat"):
            (request,) = receiver.wait_for("/outbox", 1)
        assert json.loads(request.body)["data"]["id"] == job["id"]
