"""The API's one vocabulary of error codes (api.errors.ErrorCode): each refusal answers its code
with the status the vocabulary gives it, and the OpenAPI document lists the same codes."""
from __future__ import annotations

import io

import pytest
from werkzeug.exceptions import (
    BadRequest, ImATeapot, MethodNotAllowed, NotFound, RequestedRangeNotSatisfiable, RequestEntityTooLarge,
    UnsupportedMediaType,
)

from api.errors import ErrorCode
from api_helpers import auth, submit
from jobs.fields import FieldError
from support import wav_bytes

UNKNOWN_JOB = "/v1/jobs/00000000-0000-4000-8000-000000000000"
SPEECH = {"model": "tts-1", "input": "Hello.", "voice": "alloy"}


def queued_job(client, key) -> str:
    return submit(client, key, {"text": "Hello."}).get_json()["id"]


def cancel_twice(client, key):
    job_id = queued_job(client, key)
    client.post(f"/v1/jobs/{job_id}/cancel", headers=auth(key))
    return client.post(f"/v1/jobs/{job_id}/cancel", headers=auth(key))


def delete_a_batchs_job(client, key):
    client.post("/v1/batches", data="text\nHello.\n", content_type="text/csv", headers=auth(key))
    job_id = client.get("/v1/jobs", headers=auth(key)).get_json()["jobs"][0]["id"]
    return client.delete(f"/v1/jobs/{job_id}", headers=auth(key))


def reuse_an_idempotency_key(client, key):
    headers = auth(key) | {"Idempotency-Key": "k1"}
    client.post("/v1/jobs", json={"text": "Hello."}, headers=headers)
    return client.post("/v1/jobs", json={"text": "Goodbye."}, headers=headers)


def upload_a_voice_twice(client, key):
    def upload():
        form = {"name": "narrator", "transcript": "Hello.", "audio": (io.BytesIO(wav_bytes(1.0)), "v.wav")}
        return client.post("/v1/voices", data=form, content_type="multipart/form-data", headers=auth(key))

    upload()
    return upload()


# (the code, the status clients have always had with it, a request that gets it)
REFUSALS = [
    (ErrorCode.UNAUTHORIZED, 401, lambda client, key: client.get("/v1/jobs")),
    (ErrorCode.NOT_FOUND, 404, lambda client, key: client.get(UNKNOWN_JOB, headers=auth(key))),
    (ErrorCode.NOT_FOUND, 404, lambda client, key: client.get("/v2/nothing")),  # no such route
    (ErrorCode.METHOD_NOT_ALLOWED, 405, lambda client, key: client.patch("/v1/jobs", headers=auth(key))),
    (ErrorCode.INVALID_JSON, 400, lambda client, key: client.post(
        "/v1/jobs", data="{", content_type="application/json", headers=auth(key))),
    (ErrorCode.UNSUPPORTED_MEDIA_TYPE, 415, lambda client, key: client.post(
        "/v1/jobs", data="Hello.", content_type="text/plain", headers=auth(key))),
    (ErrorCode.REQUEST_ENTITY_TOO_LARGE, 413, lambda client, key: submit(client, key, {"text": "x" * 20_000})),
    (ErrorCode.INVALID_FIELD, 422, lambda client, key: submit(client, key, {"text": "", "speaker": -1})),
    (ErrorCode.INVALID_HEADER, 400, lambda client, key: client.post(
        "/v1/jobs", json={"text": "Hello."}, headers=auth(key) | {"Idempotency-Key": "k" * 300})),
    (ErrorCode.IDEMPOTENCY_KEY_REUSED, 422, reuse_an_idempotency_key),
    (ErrorCode.INVALID_CSV, 422, lambda client, key: client.post(
        "/v1/batches", data="text,speaker\n,0\nHello.,-4\n", content_type="text/csv", headers=auth(key))),
    (ErrorCode.NOT_READY, 409, lambda client, key: client.get(
        f"/v1/jobs/{queued_job(client, key)}/audio", headers=auth(key))),
    (ErrorCode.NOT_CANCELABLE, 409, cancel_twice),
    (ErrorCode.IN_BATCH, 409, delete_a_batchs_job),
    (ErrorCode.VOICE_EXISTS, 409, upload_a_voice_twice),
    (ErrorCode.FORBIDDEN, 403, lambda client, key: client.get("/files/some/key?expires=1&signature=forged")),
    (ErrorCode.MODEL_NOT_FOUND, 404, lambda client, key: client.get("/v1/models/tts-9", headers=auth(key))),
    (ErrorCode.UNSUPPORTED_SPEED, 400, lambda client, key: client.post(
        "/v1/audio/speech", json=SPEECH | {"speed": 2.0}, headers=auth(key))),
    (ErrorCode.UNSUPPORTED_FORMAT, 400, lambda client, key: client.post(
        "/v1/audio/speech", json=SPEECH | {"response_format": "aac"}, headers=auth(key))),
]


@pytest.mark.parametrize(
    "code, status, request_it", REFUSALS, ids=[f"{code}-{index}" for index, (code, _, _) in enumerate(REFUSALS)]
)
def test_each_refusal_answers_its_code_with_its_status(client, key, code, status, request_it):
    response = request_it(client, key)
    error = response.get_json()["error"]
    assert (error["code"], response.status_code) == (code, status), error
    # The code's own status, but on OpenAI's routes a bad field is 400 (OpenAI's BadRequestError).
    openai = "type" in error
    assert code.status == status or (openai and (code.status, status) == (422, 400))


def test_every_code_a_request_field_can_carry_is_answered_with_422():
    """The job domain names a bad field's code (jobs.fields.FieldError); the API must know each."""
    assert {field_code: ErrorCode(field_code).status for field_code in FieldError} == {
        field_code: 422 for field_code in FieldError
    }


@pytest.mark.parametrize(
    "exception, code",
    [
        (BadRequest(), ErrorCode.BAD_REQUEST),
        (NotFound(), ErrorCode.NOT_FOUND),
        (MethodNotAllowed(["GET"]), ErrorCode.METHOD_NOT_ALLOWED),
        (RequestEntityTooLarge(), ErrorCode.REQUEST_ENTITY_TOO_LARGE),
        (UnsupportedMediaType(), ErrorCode.UNSUPPORTED_MEDIA_TYPE),
        (RequestedRangeNotSatisfiable(100), ErrorCode.REQUESTED_RANGE_NOT_SATISFIABLE),
        (ImATeapot(), None),  # not in the vocabulary: answered as internal_error
    ],
)
def test_werkzeugs_errors_are_named_in_the_vocabulary(exception, code):
    assert ErrorCode.of_http(exception) is code


def test_an_http_error_outside_the_vocabulary_answers_internal_error(app):
    def teapot():
        raise ImATeapot()

    app.add_url_rule("/teapot", "teapot", teapot)
    response = app.test_client().get("/teapot")
    assert response.status_code == 500
    assert response.get_json() == {"error": {"code": "internal_error", "message": "internal server error"}}


def test_the_document_lists_the_vocabulary_in_both_error_shapes(client):
    components = client.get("/openapi.json").get_json()["components"]["schemas"]
    assert components["ErrorCode"]["enum"] == [code.value for code in ErrorCode]
    assert "- `not_ready`: 409" in components["ErrorCode"]["description"]
    for shape in ("ErrorDetail", "OpenAIErrorDetail"):
        assert components[shape]["properties"]["code"]["$ref"] == "#/components/schemas/ErrorCode"
