"""The REST contract: auth and isolation, validation, the job resource, cancel, listing."""
import uuid

import pytest

from api_helpers import auth, published_messages, stored_jobs, submit
from provision import create_key, list_keys, revoke_key


def test_submit_returns_202_with_location_and_publishes_once(client, key, app, settings):
    response = submit(client, key, {"text": "Hello there.", "speaker": 1, "seed": 7, "metadata": {"ref": "a1"}})
    assert response.status_code == 202
    job = response.get_json()
    assert response.headers["Location"] == f"/v1/jobs/{job['id']}"
    assert job["status"] == "queued" and job["attempts"] == 0
    assert job["result"] is None and job["error"] is None and job["metadata"] == {"ref": "a1"}
    assert set(job) == {
        "id", "type", "format", "status", "created_at", "started_at", "finished_at", "expires_at", "attempts",
        "lines_done", "lines_total", "error", "result", "metadata", "batch_id",
    }
    assert (job["type"], job["lines_done"], job["lines_total"], job["batch_id"]) == ("text", 0, 1, None)
    assert job["format"] == "wav"
    assert stored_jobs(app) == 1 and published_messages(settings) == 1
    assert client.get(response.headers["Location"], headers=auth(key)).get_json() == job


@pytest.mark.parametrize(
    "headers, code",
    [({}, 401), ({"Authorization": "Bearer nope"}, 401), ({"Authorization": "Basic abc"}, 401)],
)
def test_every_v1_route_needs_a_valid_key(client, headers, code):
    for method, path in [("post", "/v1/jobs"), ("get", "/v1/jobs"), ("get", f"/v1/jobs/{uuid.uuid4()}")]:
        response = getattr(client, method)(path, headers=headers)
        assert response.status_code == code
        assert response.get_json()["error"]["code"] == "unauthorized"


def test_another_keys_job_is_not_found(client, key, settings):
    job_id = submit(client, key, {"text": "mine"}).get_json()["id"]
    other = create_key(settings, "bob")
    for path in (f"/v1/jobs/{job_id}", f"/v1/jobs/{job_id}/audio"):
        assert client.get(path, headers=auth(other)).status_code == 404
    assert client.post(f"/v1/jobs/{job_id}/cancel", headers=auth(other)).status_code == 404
    assert client.get("/v1/jobs", headers=auth(other)).get_json()["jobs"] == []


@pytest.mark.parametrize(
    "body, field",
    [
        ({}, "text"),
        ({"text": "   "}, "text"),
        ({"text": "x" * 201}, "text"),
        ({"text": 5}, "text"),
        ({"text": "hi", "speaker": -1}, "speaker"),
        ({"text": "hi", "speaker": "1"}, "speaker"),
        ({"text": "hi", "speaker": True}, "speaker"),
        ({"text": "hi", "max_audio_length_ms": 10}, "max_audio_length_ms"),
        ({"text": "hi", "max_audio_length_ms": 90_001}, "max_audio_length_ms"),
        ({"text": "hi", "temperature": 0}, "temperature"),
        ({"text": "hi", "temperature": 3.5}, "temperature"),
        ({"text": "hi", "topk": 0}, "topk"),
        ({"text": "hi", "topk": 1.5}, "topk"),
        ({"text": "hi", "seed": -3}, "seed"),
        ({"text": "hi", "metadata": [1, 2]}, "metadata"),
        ({"text": "hi", "metadata": {"blob": "x" * 5000}}, "metadata"),
        ({"text": "hi", "voice": "narrator"}, "voice"),
        ({"text": "hi", "format": "aac"}, "format"),
        ({"text": "hi", "format": ["mp3"]}, "format"),
        (["hi"], "body"),
    ],
)
def test_bad_fields_are_rejected_by_name_and_nothing_is_kept(client, key, app, settings, body, field):
    response = submit(client, key, body)
    assert response.status_code == 422
    error = response.get_json()["error"]
    assert error["code"] == "invalid_field" and error["field"] == field and error["message"]
    assert stored_jobs(app) == 0 and published_messages(settings) == 0


@pytest.mark.parametrize(
    "kwargs, status, code",
    [
        ({"data": "{not json", "content_type": "application/json"}, 400, "invalid_json"),
        ({"data": "text=hi", "content_type": "application/x-www-form-urlencoded"}, 415, "unsupported_media_type"),
        ({"data": '{"text": "' + "x" * 20000 + '"}', "content_type": "application/json"}, 413, "request_entity_too_large"),
    ],
)
def test_malformed_bodies_are_rejected(client, key, app, settings, kwargs, status, code):
    response = client.post("/v1/jobs", headers=auth(key), **kwargs)
    assert response.status_code == status
    assert response.get_json()["error"]["code"] == code
    assert stored_jobs(app) == 0 and published_messages(settings) == 0


def test_cancel_a_queued_job_once(client, key):
    job_id = submit(client, key, {"text": "stop me"}).get_json()["id"]
    response = client.post(f"/v1/jobs/{job_id}/cancel", headers=auth(key))
    assert response.status_code == 200 and response.get_json()["status"] == "canceled"
    again = client.post(f"/v1/jobs/{job_id}/cancel", headers=auth(key))
    assert again.status_code == 409 and again.get_json()["error"]["code"] == "not_cancelable"


def test_audio_of_an_unfinished_job_is_a_conflict(client, key):
    job_id = submit(client, key, {"text": "not yet"}).get_json()["id"]
    response = client.get(f"/v1/jobs/{job_id}/audio", headers=auth(key))
    assert response.status_code == 409 and response.get_json()["error"]["code"] == "not_ready"


def test_list_pages_newest_first_and_filters_by_status(client, key):
    ids = [submit(client, key, {"text": f"line {i}"}).get_json()["id"] for i in range(5)]
    client.post(f"/v1/jobs/{ids[0]}/cancel", headers=auth(key))
    seen, cursor = [], None
    while True:
        query = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = client.get("/v1/jobs", query_string=query, headers=auth(key)).get_json()
        seen += [job["id"] for job in page["jobs"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(ids))
    canceled = client.get("/v1/jobs?status=canceled", headers=auth(key)).get_json()["jobs"]
    assert [job["id"] for job in canceled] == [ids[0]]


@pytest.mark.parametrize("query, field", [("status=done", "status"), ("limit=0", "limit"), ("limit=abc", "limit"), ("cursor=zzz", "cursor")])
def test_bad_list_parameters_name_the_field(client, key, query, field):
    response = client.get(f"/v1/jobs?{query}", headers=auth(key))
    assert response.status_code == 422 and response.get_json()["error"]["field"] == field


def test_unknown_routes_and_methods_use_the_error_shape(client, key):
    assert client.get("/v1/nope", headers=auth(key)).get_json()["error"]["code"] == "not_found"
    assert client.get("/v1/jobs/not-a-uuid", headers=auth(key)).status_code == 404
    response = client.delete("/v1/jobs", headers=auth(key))
    assert response.status_code == 405 and response.get_json()["error"]["code"] == "method_not_allowed"


def test_health_and_readiness(client):
    assert client.get("/healthz").get_json() == {"status": "ok"}
    assert client.get("/readyz").get_json() == {"status": "ready"}


def test_a_revoked_key_is_refused_at_once_and_its_jobs_stay(client, key, settings):
    job_id = submit(client, key, {"text": "before"}).get_json()["id"]
    name = next(k["name"] for k in list_keys(settings) if k["revoked_at"] is None)
    revoked = revoke_key(settings, name)
    assert revoked["revoked_at"] is not None
    response = client.get(f"/v1/jobs/{job_id}", headers=auth(key))
    assert response.status_code == 401
    assert response.get_json()["error"] == {"code": "unauthorized", "message": "this API key was revoked"}
    assert [k["revoked_at"] is not None for k in list_keys(settings)] == [True]  # the row stays
    assert stored_jobs(client.application) == 1
