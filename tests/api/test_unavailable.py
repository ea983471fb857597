"""A server the API depends on is down: committed work is still accepted (202), a request that
needs the missing server answers 503 with Retry-After, never 500. (tests/faults covers servers
that hang, behind a proxy.)"""
import io

from api import create_app
from api_helpers import auth, stored_jobs, submit
from provision import create_key, init
from support import make_settings, s3_environment
from test_scripts_voices_api import wav_bytes

NOWHERE = "127.0.0.1:1"  # nothing listens there: connections are refused


def assert_unavailable(response, dependency: str) -> None:
    assert response.status_code == 503, response.get_json()
    assert response.get_json()["error"]["code"] == f"{dependency}_unavailable"
    assert int(response.headers["Retry-After"]) > 0


def test_with_the_broker_down_committed_jobs_and_batches_still_answer_202(tmp_path):
    settings = make_settings(CSM_DATA_DIR=str(tmp_path), BROKER_URL=f"redis://{NOWHERE}/0", BROKER_TIMEOUT_S="1")
    init(settings)
    app, key = create_app(settings), create_key(settings, "alice")
    client = app.test_client()
    assert submit(client, key, {"text": "Still accepted."}).status_code == 202
    script = {"script": [{"speaker": 0, "text": "One."}, {"speaker": 1, "text": "Two."}]}
    assert submit(client, key, script).status_code == 202
    batch = client.post("/v1/batches", data="text\nfirst\nsecond\n", content_type="text/csv", headers=auth(key))
    assert batch.status_code == 202
    assert stored_jobs(app) == 4  # the sweeper publishes them once the broker is back


def test_with_the_database_down_every_v1_request_answers_503(tmp_path):
    settings = make_settings(
        CSM_DATA_DIR=str(tmp_path), DATABASE_URL=f"postgresql+psycopg://root@{NOWHERE}/test",
        DATABASE_CONNECT_TIMEOUT_S="2",
    )
    client = create_app(settings).test_client()
    headers = auth("any-key")
    assert_unavailable(client.get("/v1/jobs", headers=headers), "database")
    assert_unavailable(client.post("/v1/jobs", json={"text": "Hello."}, headers=headers), "database")
    idempotent = {**headers, "Idempotency-Key": "k1"}
    assert_unavailable(client.post("/v1/jobs", json={"text": "Hello."}, headers=idempotent), "database")
    ready = client.get("/readyz")
    assert ready.status_code == 503 and "database" in ready.get_json()["failed"]


def test_with_the_object_store_down_a_voice_upload_answers_503(tmp_path):
    environ = s3_environment(f"http://{NOWHERE}", "voices")
    settings = make_settings(CSM_DATA_DIR=str(tmp_path), S3_MAX_ATTEMPTS="1", **environ)
    init_settings = make_settings(CSM_DATA_DIR=str(tmp_path))
    init(init_settings)  # the database only: the store is down
    client, key = create_app(settings).test_client(), create_key(settings, "alice")
    audio = (io.BytesIO(wav_bytes(1.0)), "v.wav")
    response = client.post(
        "/v1/voices", data={"name": "narrator", "transcript": "Hi.", "audio": audio},
        headers=auth(key), content_type="multipart/form-data",
    )
    assert_unavailable(response, "object_store")
    assert client.get("/v1/voices", headers=auth(key)).get_json()["voices"] == []

