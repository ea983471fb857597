"""The request contract on PostgreSQL: every bad field of a request is listed at once, and
inputs that once gave 500 (PostgreSQL refusing a NUL, a parser recursing, a number too big for a
float, a digit that is not ASCII) answer a 4xx naming the field, storing nothing."""
import base64
import io
import json
import uuid

import pytest
from pydantic import TypeAdapter
from sqlalchemy import text

from api import create_app
from api.routes import ROUTES
from api_helpers import auth, published_messages, stored_jobs, submit
from provision import create_key, init
from jobs.db import make_engine
from support import make_settings


@pytest.fixture
def pg(tmp_path, shared_postgres_url):
    """(settings, app, client, key) on an emptied PostgreSQL database."""
    engine = make_engine(shared_postgres_url)
    with engine.begin() as conn:
        conn.execute(text("TRUNCATE jobs, api_keys RESTART IDENTITY CASCADE"))
    engine.dispose()
    settings = make_settings(
        CSM_DATA_DIR=str(tmp_path), DATABASE_URL=shared_postgres_url, MAX_TEXT_CHARS="200", MAX_BODY_BYTES="65536"
    )
    init(settings)
    app = create_app(settings)
    return settings, app, app.test_client(), create_key(settings, "alice")


def cursor_of(value) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


def assert_refused(response, field: str, status: int = 422) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    error = response.get_json()["error"]
    assert error["field"] == field and error["message"]
    return error


@pytest.mark.parametrize(
    "path, field",
    [
        ("/v1/jobs?limit=²", "limit"),  # "²".isdigit() is True, int("²") raises
        ("/v1/batches?limit=²", "limit"),
        ("/v1/jobs?limit=1" + "0" * 400, "limit"),
        ("/v1/jobs?cursor=" + cursor_of(["2024-01-01T00:00:00", "00000000-0000-0000-0000-000000000000"]), "cursor"),
        ("/v1/jobs?cursor=" + base64.urlsafe_b64encode(b"[" * 5000).decode(), "cursor"),
        ("/v1/jobs?cursor=" + cursor_of(["2024-01-01T00:00:00+00:00", 5]), "cursor"),  # uuid.UUID(5) raised
        ("/v1/jobs?cursor=" + cursor_of(["2024-01-01T00:00:00+00:00", ["x"]]), "cursor"),
        ("/v1/jobs?cursor=" + cursor_of({"a": 1, "b": 2}), "cursor"),
        ("/v1/jobs?status=done&limit=1", "status"),
        ("/v1/jobs?colour=blue", "colour"),
        ("/v1/voices/a%00b", "name"),
        ("/v1/batches/00000000-0000-0000-0000-000000000000/manifest?format=xml", "format"),
        ("/files/some/key?expires=²&signature=x", "expires"),
        ("/v1/jobs/00000000-0000-0000-0000-000000000000/lines/99999999999999999999999/audio", "index"),
    ],
)
def test_bad_query_and_path_parameters_name_the_field(pg, path, field):
    _settings, _app, client, key = pg
    assert_refused(client.get(path, headers=auth(key)), field)


def test_a_voice_name_with_nul_cannot_be_deleted_either(pg):
    _settings, _app, client, key = pg
    assert_refused(client.delete("/v1/voices/a%00b", headers=auth(key)), "name")


@pytest.mark.parametrize(
    "raw, field, status",
    [
        ('{"text": "hi", "temperature": 1' + "0" * 400 + "}", "temperature", 422),
        ('{"text": "hi", "temperature": NaN}', "temperature", 422),
        ('{"text": "hi", "seed": 1' + "0" * 400 + "}", "seed", 422),
        ('{"text": "hi", "metadata": {"score": NaN}}', "metadata", 422),
        ('{"text": "hi", "metadata": {"deep": [Infinity]}}', "metadata", 422),
        ('{"text": "a\\u0000b"}', "text", 422),
        ('{"script": [{"speaker": 0, "text": "a\\u0000b"}]}', "script[0].text", 422),
        ("[" * 20_000, "body", 400),  # the standard library's parser recursed until RecursionError
    ],
)
def test_bodies_that_gave_500_name_the_field_and_store_nothing(pg, raw, field, status):
    settings, app, client, key = pg
    response = client.post("/v1/jobs", data=raw, content_type="application/json", headers=auth(key))
    assert_refused(response, field, status)
    assert stored_jobs(app) == 0 and published_messages(settings) == 0


def test_every_bad_field_is_listed_at_once_the_first_repeated(pg):
    settings, app, client, key = pg
    body = {
        "script": [{"speaker": 0, "text": "fine"}, {"text": "no speaker"}, {"speaker": 1, "text": "  "}],
        "temperature": 3,
        "format": "aac",
        "mood": "happy",
    }
    error = submit(client, key, body).get_json()["error"]
    assert error["code"] == "invalid_field"
    assert [(p["field"], p["message"]) for p in error["problems"]] == [
        ("temperature", "must be between 0.0 and 2.0"),
        ("format", "must be one of wav, flac, mp3, opus, pcm"),
        ("script[1].speaker", "is required"),
        ("script[2].text", "must not be empty"),
        ("mood", "unknown field"),
    ]
    assert (error["field"], error["message"]) == ("temperature", "must be between 0.0 and 2.0")
    assert stored_jobs(app) == 0 and published_messages(settings) == 0


def test_null_fields_take_their_defaults(pg):
    _settings, _app, client, key = pg
    response = submit(client, key, {"text": "hi", "temperature": None, "seed": None, "metadata": None})
    assert response.status_code == 202 and response.get_json()["metadata"] is None


def test_csv_with_a_nul_byte_is_refused_by_line_and_column(pg):
    _settings, app, client, key = pg
    data = b"text,speaker,script\nhe\x00llo,0,\nfine,1,s\x00t\n"
    response = client.post("/v1/batches", data=data, content_type="text/csv", headers=auth(key))
    assert response.status_code == 422
    problems = response.get_json()["error"]["problems"]
    assert [(p["line"], p["field"], p["message"]) for p in problems] == [
        (2, "text", "must not contain a NUL character"),
        (3, "script", "must not contain a NUL character"),
    ]
    assert stored_jobs(app) == 0


@pytest.mark.parametrize("filename", ["a" * 300 + ".csv", "a\x00b.csv"])
def test_an_upload_file_name_too_long_for_its_column_is_refused(pg, filename):
    _settings, app, client, key = pg
    response = client.post(
        "/v1/batches", data={"file": (io.BytesIO(b"text\nhi\n"), filename)},
        content_type="multipart/form-data", headers=auth(key),
    )
    assert_refused(response, "file")
    assert stored_jobs(app) == 0


def test_a_voice_upload_lists_every_bad_part(pg):
    _settings, _app, client, key = pg
    response = client.post(
        "/v1/voices", data={"name": "bad name!", "transcript": "a\x00b", "audio": (io.BytesIO(b"noise"), "v.wav")},
        content_type="multipart/form-data", headers=auth(key),
    )
    error = assert_refused(response, "name")
    assert [p["field"] for p in error["problems"]] == ["name", "transcript", "audio"]


@pytest.mark.parametrize(
    "change, param",
    [
        ({"input": "a\x00b"}, "input"),
        ({"voice": "²"}, "voice"),
        ({"speed": float("inf")}, "speed"),
        ({"model": "whisper-1", "input": "a\x00b"}, "model"),  # the first of two
    ],
)
def test_speech_names_the_first_bad_field_in_openais_shape(pg, change, param):
    _settings, app, client, key = pg
    body = {"model": "tts-1", "input": "Hello.", "voice": "alloy"} | change
    raw = json.dumps(body)  # Infinity: written as Python's json does, and refused
    response = client.post("/v1/audio/speech", data=raw, content_type="application/json", headers=auth(key))
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["param"] == param
    assert stored_jobs(app) == 0


def test_a_redelivery_of_an_event_id_with_nul_names_it(pg):
    _settings, _app, client, key = pg
    job_id = submit(client, key, {"text": "hi"}).get_json()["id"]
    assert_refused(client.post(f"/v1/jobs/{job_id}/deliveries/msg_%00/redeliver", headers=auth(key)), "event_id")


def test_a_stored_nan_is_answered_as_null_never_as_bare_nan(client, key, app):
    """SQLite (the embedded default) can hold a NaN stored before requests refused them."""
    from jobs.models import Job

    job_id = submit(client, key, {"text": "hi", "metadata": {"score": 1}}).get_json()["id"]
    with app.extensions["csm_batch"].sessions.begin() as session:
        session.get(Job, uuid.UUID(job_id)).user_metadata = {"score": float("nan")}
    raw = client.get(f"/v1/jobs/{job_id}", headers=auth(key)).get_data(as_text=True)
    strict = json.loads(raw, parse_constant=lambda name: pytest.fail(f"bare {name} in {raw}"))
    assert strict["metadata"] == {"score": None}


def test_every_route_that_reads_input_declares_models_with_a_json_schema():
    declared = {
        (route.method, route.rule): route.view.inputs for route in ROUTES if getattr(route.view, "inputs", None)
    }
    assert set(declared) == {
        ("POST", "/v1/jobs"), ("GET", "/v1/jobs"), ("POST", "/v1/batches"), ("GET", "/v1/batches"),
        ("GET", "/v1/batches/<uuid:batch_id>/manifest"), ("GET", "/v1/jobs/<uuid:job_id>/lines/<int:index>/audio"),
        ("GET", "/v1/jobs/<uuid:job_id>/lines/<int:index>/audio-url"), ("POST", "/v1/voices"), ("GET", "/v1/voices/<name>"),
        ("DELETE", "/v1/voices/<name>"), ("POST", "/v1/jobs/<uuid:job_id>/deliveries/<event_id>/redeliver"),
        ("POST", "/v1/batches/<uuid:batch_id>/deliveries/<event_id>/redeliver"), ("POST", "/generate_audio"),
        ("POST", "/v1/generate_audio"), ("POST", "/v1/audio/speech"), ("GET", "/files/<path:key>"),
    }
    for inputs in declared.values():
        for model in filter(None, (inputs.body, inputs.query, inputs.form, inputs.path)):
            schema = TypeAdapter(model).json_schema()
            assert "properties" in schema or "anyOf" in schema
