"""DELETE of jobs and batches, and downloads past RESULT_TTL_HOURS, at the REST boundary (the
embedded default: SQLite and a local store, all real)."""
import dataclasses
import uuid
from datetime import datetime, timedelta

import pytest
from sqlalchemy import update

from api import build_services, create_app
from api_helpers import auth, submit
from provision import create_key, init
from jobs import repository
from jobs.models import Batch, utcnow
from refusing_s3 import run_refusing_s3
from storage import StorageUnavailable
from support import finish_with_outputs, make_settings, s3_client, s3_environment

SCRIPT = {"script": [{"speaker": 0, "text": "one"}, {"speaker": 1, "text": "two"}]}
CSV = "text,speaker\nfirst,0\nsecond,1\n"


def services_of(app):
    return app.extensions["csm_batch"]


def finished(app, key, body=SCRIPT, finished_ago_s: float = 0) -> tuple[str, list[str]]:
    job_id = submit(app.test_client(), key, body).get_json()["id"]
    return job_id, finish_with_outputs(services_of(app).sessions, services_of(app).store, job_id, finished_ago_s)


def claim(app, job_id: str):
    with services_of(app).sessions.begin() as session:
        return repository.claim_job(session, uuid.UUID(job_id), lease_s=60, max_attempts=3)


def stored(app, keys) -> list[str]:
    return [key for key in keys if services_of(app).store.path(key).exists()]


def post_csv(client, key):
    return client.post("/v1/batches", data=CSV.encode(), headers=auth(key), content_type="text/csv")


def test_a_deleted_job_is_gone_with_its_outputs(client, key, app):
    job_id, keys = finished(app, key)
    assert stored(app, keys) == keys and len(keys) == 4  # two lines, the master and the manifest
    assert client.get(f"/v1/jobs/{job_id}/lines/1/audio", headers=auth(key)).status_code == 200

    assert client.delete(f"/v1/jobs/{job_id}", headers=auth(key)).status_code == 204
    assert stored(app, keys) == []
    for path in ("", "/audio", "/manifest", "/lines/0/audio", "/deliveries"):
        assert client.get(f"/v1/jobs/{job_id}{path}", headers=auth(key)).status_code == 404, path
    assert client.delete(f"/v1/jobs/{job_id}", headers=auth(key)).status_code == 404


def test_only_the_owner_deletes_and_never_a_running_job_or_one_of_a_batch(client, key, app, settings):
    queued = submit(client, key, {"text": "mine"}).get_json()["id"]
    other = create_key(settings, "bob")
    assert client.delete(f"/v1/jobs/{queued}", headers=auth(other)).status_code == 404

    running = submit(client, key, {"text": "busy"}).get_json()["id"]
    claim(app, running)
    refused = client.delete(f"/v1/jobs/{running}", headers=auth(key))
    assert refused.status_code == 409 and refused.get_json()["error"]["code"] == "running"

    batch = post_csv(client, key).get_json()
    member = client.get("/v1/jobs", headers=auth(key)).get_json()["jobs"][0]
    assert member["batch_id"] == batch["id"]
    refused = client.delete(f"/v1/jobs/{member['id']}", headers=auth(key))
    assert refused.status_code == 409 and refused.get_json()["error"]["code"] == "in_batch"

    # A queued job is deleted, not canceled: the worker that takes its message claims nothing.
    assert client.delete(f"/v1/jobs/{queued}", headers=auth(key)).status_code == 204
    assert claim(app, queued) is None


def test_a_submission_repeated_after_its_job_was_deleted_creates_a_new_job(client, key):
    headers = auth(key) | {"Idempotency-Key": "order-17"}
    first = client.post("/v1/jobs", json={"text": "again"}, headers=headers)
    replayed = client.post("/v1/jobs", json={"text": "again"}, headers=headers)
    assert replayed.headers.get("Idempotent-Replayed") == "true"
    assert client.delete(first.headers["Location"], headers=auth(key)).status_code == 204
    second = client.post("/v1/jobs", json={"text": "again"}, headers=headers)
    assert second.status_code == 202 and "Idempotent-Replayed" not in second.headers
    assert second.get_json()["id"] != first.get_json()["id"]


def test_a_batch_is_deleted_with_its_jobs_once_none_runs(client, key, app):
    batch = post_csv(client, key).get_json()
    first, second = sorted(client.get("/v1/jobs", headers=auth(key)).get_json()["jobs"], key=lambda j: j["created_at"])
    sessions = services_of(app).sessions
    held = claim(app, second["id"])
    refused = client.delete(f"/v1/batches/{batch['id']}", headers=auth(key))
    assert refused.status_code == 409 and "1 job(s) are running" in refused.get_json()["error"]["message"]

    keys = finish_with_outputs(sessions, services_of(app).store, first["id"])
    with sessions.begin() as session:
        repository.fail_job(session, held, "engine_error", "the engine failed")
    assert client.get(f"/v1/batches/{batch['id']}", headers=auth(key)).get_json()["status"] == "partially_succeeded"
    assert client.delete(f"/v1/batches/{batch['id']}", headers=auth(key)).status_code == 204
    assert stored(app, keys) == []
    for path in (f"/v1/batches/{batch['id']}", f"/v1/batches/{batch['id']}/manifest",
                 f"/v1/jobs/{first['id']}", f"/v1/jobs/{second['id']}"):
        assert client.get(path, headers=auth(key)).status_code == 404, path
    assert client.get("/v1/batches", headers=auth(key)).get_json()["batches"] == []


def test_a_store_outage_answers_503_and_keeps_the_rows_for_a_retry(settings, key):
    class Flaky:
        """The real store, whose next delete fails as an unreachable S3 would."""

        def __init__(self, store):
            self.store, self.down = store, True

        def __getattr__(self, name):
            return getattr(self.store, name)

        def delete_many(self, keys):
            if self.down:
                self.down = False
                raise StorageUnavailable("object store unreachable")
            self.store.delete_many(keys)

    real = build_services(settings)
    app = create_app(settings, dataclasses.replace(real, store=Flaky(real.store)))
    client = app.test_client()
    job_id, keys = finished(app, key, {"text": "keep me"})
    failed = client.delete(f"/v1/jobs/{job_id}", headers=auth(key))
    assert failed.status_code == 503 and failed.headers["Retry-After"]
    assert client.get(f"/v1/jobs/{job_id}", headers=auth(key)).status_code == 200
    assert client.delete(f"/v1/jobs/{job_id}", headers=auth(key)).status_code == 204
    assert stored(app, keys) == []


def test_a_local_store_that_cannot_delete_answers_503_and_keeps_the_rows(client, key, app):
    job_id, keys = finished(app, key, {"text": "keep me"})
    audio = services_of(app).store.path(keys[0])
    audio.unlink()
    (audio / "in-the-way").mkdir(parents=True)  # an OS error other than "missing": not removable as a file
    failed = client.delete(f"/v1/jobs/{job_id}", headers=auth(key))
    assert failed.status_code == 503 and failed.headers["Retry-After"], failed.get_json()
    assert failed.get_json()["error"]["code"] == "object_store_unavailable"
    assert client.get(f"/v1/jobs/{job_id}", headers=auth(key)).status_code == 200
    (audio / "in-the-way").rmdir()
    audio.rmdir()
    assert client.delete(f"/v1/jobs/{job_id}", headers=auth(key)).status_code == 204


def test_an_s3_store_that_refuses_deletes_answers_503_and_keeps_rows_and_objects_for_a_retry(
    tmp_path, s3_endpoint, s3_bucket
):
    """A 403 from S3 (a key no longer allowed to delete) is the store's set-up failing: 503 with
    the error shape, nothing deleted, and the same DELETE works once the store is fixed."""
    with run_refusing_s3(s3_endpoint) as s3:
        settings = make_settings(CSM_DATA_DIR=str(tmp_path), **s3_environment(s3.url, s3_bucket))
        init(settings)
        app, key = create_app(settings), create_key(settings, "alice")
        client = app.test_client()
        job_id, job_keys = finished(app, key)
        batch = post_csv(client, key).get_json()
        batch_keys = [
            output for member in client.get("/v1/jobs", headers=auth(key)).get_json()["jobs"] if member["batch_id"]
            for output in finish_with_outputs(services_of(app).sessions, services_of(app).store, member["id"])
        ]

        def in_bucket() -> set[str]:
            listed = s3_client(s3_endpoint).list_objects_v2(Bucket=s3_bucket)
            return {item["Key"] for item in listed.get("Contents", [])}

        assert in_bucket() == {*job_keys, *batch_keys}
        with s3.refusing("POST", "DELETE"):  # DeleteObjects is a POST
            for path in (f"/v1/jobs/{job_id}", f"/v1/batches/{batch['id']}"):
                refused = client.delete(path, headers=auth(key))
                assert refused.status_code == 503 and refused.headers["Retry-After"], path
                assert refused.get_json() == {"error": {
                    "code": "object_store_unavailable", "message": "the object store is unavailable; try again shortly",
                }}
                assert client.get(path, headers=auth(key)).status_code == 200, path
        assert s3.refusals == 2
        assert in_bucket() == {*job_keys, *batch_keys}
        assert client.get(f"/v1/jobs/{job_id}/audio", headers=auth(key)).status_code in (200, 302)

        for path in (f"/v1/jobs/{job_id}", f"/v1/batches/{batch['id']}"):
            assert client.delete(path, headers=auth(key)).status_code == 204, path
            assert client.get(path, headers=auth(key)).status_code == 404, path
        assert in_bucket() == set()


@pytest.fixture
def ttl_app(tmp_path):
    settings = make_settings(CSM_DATA_DIR=str(tmp_path), MAX_TEXT_CHARS="200", RESULT_TTL_HOURS="1")
    init(settings)
    return create_app(settings)


@pytest.fixture
def ttl_key(ttl_app):
    return create_key(services_of(ttl_app).settings, "alice")


def expire_now(app) -> int:
    from jobs import retention
    from jobs.models import utcnow

    services = services_of(app)
    return retention.expire_outputs(services.sessions, services.store, utcnow(), services.settings.result_ttl)


@pytest.mark.parametrize("path", ["/audio", "/audio-url", "/manifest", "/lines/0/audio", "/lines/1/audio-url"])
def test_downloads_past_the_ttl_answer_410_before_and_after_the_sweep(ttl_app, ttl_key, path):
    client = ttl_app.test_client()
    fresh, _ = finished(ttl_app, ttl_key)
    old, keys = finished(ttl_app, ttl_key, finished_ago_s=2 * 3600)
    assert client.get(f"/v1/jobs/{fresh}{path}", headers=auth(ttl_key)).status_code == 200
    gone = client.get(f"/v1/jobs/{old}{path}", headers=auth(ttl_key))
    assert gone.status_code == 410 and gone.get_json()["error"]["code"] == "expired"

    assert expire_now(ttl_app) == 1
    assert stored(ttl_app, keys) == []
    assert client.get(f"/v1/jobs/{old}{path}", headers=auth(ttl_key)).status_code == 410
    assert client.get(f"/v1/jobs/{fresh}{path}", headers=auth(ttl_key)).status_code == 200


def test_expires_at_is_the_ttl_after_the_job_or_its_batch_finished(ttl_app, ttl_key, client, key):
    ttl_client = ttl_app.test_client()
    job_id, _ = finished(ttl_app, ttl_key)
    job = ttl_client.get(f"/v1/jobs/{job_id}", headers=auth(ttl_key)).get_json()
    assert datetime.fromisoformat(job["expires_at"]) - datetime.fromisoformat(job["finished_at"]) == timedelta(hours=1)
    queued = submit(ttl_client, ttl_key, {"text": "waiting"}).get_json()
    assert queued["expires_at"] is None
    # Kept forever when RESULT_TTL_HOURS is unset.
    assert submit(client, key, {"text": "kept"}).get_json()["expires_at"] is None

    batch = post_csv(ttl_client, ttl_key).get_json()
    assert batch["expires_at"] is None
    sessions, store = services_of(ttl_app).sessions, services_of(ttl_app).store
    members = [job for job in ttl_client.get("/v1/jobs", headers=auth(ttl_key)).get_json()["jobs"] if job["batch_id"]]
    for member in members:
        finish_with_outputs(sessions, store, member["id"], finished_ago_s=2 * 3600)
    with sessions.begin() as session:  # the batch ended long ago
        session.execute(update(Batch).values(finished_at=utcnow() - timedelta(hours=2)))
    batch = ttl_client.get(f"/v1/batches/{batch['id']}", headers=auth(ttl_key)).get_json()
    member = ttl_client.get(f"/v1/jobs/{members[0]['id']}", headers=auth(ttl_key)).get_json()
    assert batch["expires_at"] == member["expires_at"] and batch["status"] == "succeeded"
    for path in ("manifest", "archive"):
        gone = ttl_client.get(f"/v1/batches/{batch['id']}/{path}", headers=auth(ttl_key))
        assert gone.status_code == 410 and gone.get_json()["error"]["code"] == "expired", path


def test_a_job_rendered_while_the_store_deletes_keeps_its_row_and_objects_for_a_retry(settings, key):
    """A queued job has no outputs when the DELETE reads its keys; a worker that renders it while
    the store is called writes new ones. Deleting the row then would orphan them."""

    class Racing:
        """The real store; during its first delete a worker renders the job."""

        def __init__(self, store):
            self.store, self.job_id, self.rendered = store, None, []

        def __getattr__(self, name):
            return getattr(self.store, name)

        def delete_many(self, keys):
            if self.job_id is not None and not self.rendered:
                self.rendered = finish_with_outputs(real.sessions, self.store, self.job_id)
            self.store.delete_many(keys)

    real = build_services(settings)
    store = Racing(real.store)
    app = create_app(settings, dataclasses.replace(real, store=store))
    client = app.test_client()
    store.job_id = submit(client, key, SCRIPT).get_json()["id"]

    refused = client.delete(f"/v1/jobs/{store.job_id}", headers=auth(key))
    assert refused.status_code == 409 and refused.get_json()["error"]["code"] == "running"
    assert client.get(f"/v1/jobs/{store.job_id}", headers=auth(key)).get_json()["status"] == "succeeded"
    assert stored(app, store.rendered) == store.rendered  # still named by the row
    assert client.delete(f"/v1/jobs/{store.job_id}", headers=auth(key)).status_code == 204
    assert stored(app, store.rendered) == []
