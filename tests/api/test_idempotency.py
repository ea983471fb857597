"""Idempotency-Key on POST /v1/jobs and POST /v1/batches, on SQLite and PostgreSQL: a repeat
replays the first response, another request with the key is refused, a concurrent one is told
to wait, and exactly one job or batch exists whatever the client retries."""
import io
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor, as_completed
from datetime import timedelta

import pytest
import requests
from sqlalchemy import func, select, update
from werkzeug.exceptions import ServiceUnavailable

import api.jobs
from api import create_app
from api.idempotency import HEADER, REPLAYED_HEADER
from api_helpers import auth, published_messages
from provision import create_key, init
from jobs import keys, repository
from jobs.db import make_engine, make_session_factory
from jobs.idempotency import IDEMPOTENCY_TTL, PROCESSING_TIMEOUT, purge_expired
from jobs.models import Batch, IdempotencyRecord, Job, utcnow
from support import make_settings, serve_api
from test_scripts_voices_api import upload_voice

BODY = {"text": "Hello there.", "speaker": 1, "seed": 7}
OTHER = {"text": "Something else.", "speaker": 1, "seed": 7}
CSV = "text,speaker\nHello there,0\nGeneral Kenobi,1\n"


# Every test here runs on both databases: the module's settings point the app at each.
@pytest.fixture
def settings(tmp_path, database_url):
    settings = make_settings(
        CSM_DATA_DIR=str(tmp_path), DATABASE_URL=database_url, MAX_TEXT_CHARS="200", MAX_BODY_BYTES="16384"
    )
    init(settings)
    return settings


@pytest.fixture
def app(settings):
    app = create_app(settings)
    yield app
    app.extensions["csm_batch"].sessions.kw["bind"].dispose()


class Gate:
    """Holds each submit inside its view (job committed, response not yet stored) until let go."""

    def __init__(self):
        self.held: list[threading.Event] = []
        self._entered = threading.Condition()

    def hold(self) -> None:
        release = threading.Event()
        with self._entered:
            self.held.append(release)
            self._entered.notify_all()
        release.wait(30)

    def wait_for(self, count: int) -> None:
        with self._entered:
            assert self._entered.wait_for(lambda: len(self.held) >= count, timeout=30)

    def let_go(self, index: int | None = None) -> None:
        for release in self.held if index is None else [self.held[index]]:
            release.set()


@pytest.fixture
def gate(monkeypatch):
    gate = Gate()
    publish_render = api.jobs.publish_render

    def gated(*args, **kwargs):
        gate.hold()
        publish_render(*args, **kwargs)

    monkeypatch.setattr(api.jobs, "publish_render", gated)
    yield gate
    gate.let_go()


def post(client, key, body, idempotency_key="k-1"):
    return client.post("/v1/jobs", json=body, headers={**auth(key), HEADER: idempotency_key})


def post_csv(client, key, body=CSV, query="", idempotency_key="b-1"):
    return client.post(
        f"/v1/batches{query}", data=body.encode(), content_type="text/csv",
        headers={**auth(key), HEADER: idempotency_key},
    )


def count(settings, model) -> int:
    engine = make_engine(settings.database_url)
    try:
        with make_session_factory(engine)() as session:
            return session.scalar(select(func.count()).select_from(model))
    finally:
        engine.dispose()


def set_records(app, age: timedelta, **values) -> None:
    """Back-dates every record (as if written `age` ago) and overwrites the given columns."""
    with app.extensions["csm_batch"].sessions.begin() as session:
        session.execute(update(IdempotencyRecord).values(created_at=utcnow() - age, **values))


PROCESSING = {"status_code": None, "response_body": None, "location": None}


def test_a_repeat_replays_the_first_response_and_creates_nothing(client, key, app, settings):
    first = post(client, key, BODY)
    assert first.status_code == 202 and REPLAYED_HEADER not in first.headers
    again = post(client, key, BODY)
    assert again.status_code == 202 and again.headers[REPLAYED_HEADER] == "true"
    assert again.get_data() == first.get_data()
    assert again.headers["Location"] == first.headers["Location"] == f"/v1/jobs/{first.get_json()['id']}"
    assert count(settings, Job) == 1 and published_messages(settings) == 1


def test_the_key_with_another_body_is_refused_and_creates_nothing(client, key, settings):
    first = post(client, key, BODY)
    reused = post(client, key, OTHER)
    assert reused.status_code == 422
    error = reused.get_json()["error"]
    assert error["code"] == "idempotency_key_reused" and error["field"] == HEADER
    assert count(settings, Job) == 1 and published_messages(settings) == 1
    assert post(client, key, BODY).get_json()["id"] == first.get_json()["id"]  # the record is intact


def test_concurrent_requests_with_one_key_create_one_job(settings, key, gate):
    n = 6
    barrier = threading.Barrier(n)

    def fire(base):
        barrier.wait()
        return requests.post(f"{base}/v1/jobs", json=BODY, headers={**auth(key), HEADER: "k-1"}, timeout=60)

    with serve_api(settings) as base, ThreadPoolExecutor(n) as pool:
        futures = [pool.submit(fire, base) for _ in range(n)]
        # One request holds the key and is held in its view; every other one must be answered
        # while it is still processing.
        gate.wait_for(1)
        answered = []
        for future in as_completed(futures, timeout=30):
            answered.append(future.result())
            if len(answered) == n - 1:
                break
        assert Counter(r.status_code for r in answered) == {409: n - 1}
        assert {r.json()["error"]["code"] for r in answered} == {"idempotency_key_in_progress"}
        gate.let_go()
        responses = [future.result() for future in futures]
        assert Counter(r.status_code for r in responses) == {202: 1, 409: n - 1}
        created = next(r for r in responses if r.status_code == 202)
        replay = requests.post(f"{base}/v1/jobs", json=BODY, headers={**auth(key), HEADER: "k-1"}, timeout=60)
    assert replay.status_code == 202 and replay.headers[REPLAYED_HEADER] == "true"
    assert replay.json()["id"] == created.json()["id"]
    assert count(settings, Job) == 1 and published_messages(settings) == 1


def test_keys_are_scoped_per_api_key(client, key, settings):
    other = create_key(settings, "bob")
    mine = post(client, key, BODY)
    theirs = post(client, other, BODY)
    assert theirs.status_code == 202 and REPLAYED_HEADER not in theirs.headers
    assert theirs.get_json()["id"] != mine.get_json()["id"]
    assert post(client, other, OTHER, idempotency_key="k-2").status_code == 202
    assert count(settings, Job) == 3


def test_a_batch_is_replayed_and_created_once(client, key, settings):
    first = post_csv(client, key)
    assert first.status_code == 202
    again = post_csv(client, key)
    assert again.status_code == 202 and again.headers[REPLAYED_HEADER] == "true"
    assert again.get_data() == first.get_data() and again.headers["Location"] == first.headers["Location"]
    assert count(settings, Batch) == 1 and count(settings, Job) == 2


def test_a_multipart_batch_is_the_same_request_whatever_its_boundary(client, key, settings):
    def upload():
        return client.post(
            "/v1/batches", data={"file": (io.BytesIO(CSV.encode()), "episode.csv")},
            headers={**auth(key), HEADER: "b-1"}, content_type="multipart/form-data",
        )

    first, again = upload(), upload()
    assert first.request.content_type != again.request.content_type  # random boundaries
    assert (first.status_code, again.status_code) == (202, 202)
    assert again.headers[REPLAYED_HEADER] == "true" and again.get_json()["id"] == first.get_json()["id"]
    assert first.get_json()["filename"] == "episode.csv"
    assert count(settings, Batch) == 1


def test_a_batch_larger_than_the_json_limit_is_accepted_with_a_key(client, key, settings):
    rows = "".join(f"Row number {i} says something moderately long for its size,0\n" for i in range(400))
    body = "text,speaker\n" + rows
    assert len(body) > settings.max_body_bytes
    first = post_csv(client, key, body)
    assert first.status_code == 202, first.get_json()
    assert post_csv(client, key, body).get_json()["id"] == first.get_json()["id"]
    assert count(settings, Batch) == 1 and count(settings, Job) == 400


def test_a_dry_run_is_another_request_than_the_upload(client, key, settings):
    dry = post_csv(client, key, query="?validate_only=true")
    assert dry.status_code == 200 and dry.get_json()["valid"] is True
    assert post_csv(client, key, query="?validate_only=true").headers[REPLAYED_HEADER] == "true"
    upload = post_csv(client, key)
    assert upload.status_code == 422 and upload.get_json()["error"]["code"] == "idempotency_key_reused"
    assert count(settings, Batch) == 0


def test_a_validation_error_is_not_stored_and_a_retry_is_evaluated_afresh(client, key, settings):
    first = post(client, key, {"text": "  "})
    assert first.status_code == 422 and first.get_json()["error"]["field"] == "text"
    again = post(client, key, {"text": "  "})
    assert again.status_code == 422 and REPLAYED_HEADER not in again.headers
    assert count(settings, IdempotencyRecord) == 0 and count(settings, Job) == 0
    assert post(client, key, BODY).status_code == 202  # the key is free for another request


def test_a_batch_refused_for_a_missing_voice_goes_through_once_the_voice_exists(client, key, settings):
    csv = "text,speaker,voice\nHello there,0,narrator\n"
    refused = post_csv(client, key, csv)
    assert refused.status_code == 422 and "narrator" in refused.get_data(as_text=True)
    assert upload_voice(client, key).status_code == 201
    accepted = post_csv(client, key, csv)
    assert accepted.status_code == 202 and REPLAYED_HEADER not in accepted.headers
    assert post_csv(client, key, csv).headers[REPLAYED_HEADER] == "true"
    assert count(settings, Batch) == 1


@pytest.mark.parametrize(
    "body, content_type, status",
    [(b"{not json", "application/json", 400), (b"text", "application/xml", 415), (b"x" * 20000, "application/json", 413)],
)
def test_a_request_refused_before_the_view_runs_saves_nothing(client, key, settings, body, content_type, status):
    def send():
        return client.post("/v1/jobs", data=body, content_type=content_type, headers={**auth(key), HEADER: "k-1"})

    assert send().status_code == status
    assert count(settings, IdempotencyRecord) == 0
    assert REPLAYED_HEADER not in send().headers


@pytest.mark.parametrize("error", [RuntimeError("database on fire"), ServiceUnavailable()])
def test_a_server_error_releases_the_key(client, key, settings, monkeypatch, error):
    def broken(*args, **kwargs):
        raise error

    monkeypatch.setattr(repository, "create_job", broken)
    failed = post(client, key, BODY)
    assert failed.status_code >= 500 and REPLAYED_HEADER not in failed.headers
    assert count(settings, IdempotencyRecord) == 0
    monkeypatch.undo()
    retry = post(client, key, BODY)
    assert retry.status_code == 202 and REPLAYED_HEADER not in retry.headers
    assert count(settings, Job) == 1


def test_an_abandoned_reservation_is_taken_over_by_the_same_request(client, key, app, settings):
    first = post(client, key, BODY)
    # The process died after committing the job, before storing the response.
    set_records(app, PROCESSING_TIMEOUT - timedelta(seconds=5), **PROCESSING)
    assert post(client, key, BODY).status_code == 409
    set_records(app, PROCESSING_TIMEOUT + timedelta(seconds=1), **PROCESSING)
    assert post(client, key, OTHER).status_code == 422  # only the same request may take it over
    retry = post(client, key, BODY)
    assert retry.status_code == 202 and REPLAYED_HEADER not in retry.headers
    # At least once: the crashed request's job exists too.
    assert retry.get_json()["id"] != first.get_json()["id"] and count(settings, Job) == 2
    assert post(client, key, BODY).get_json()["id"] == retry.get_json()["id"]


def test_an_expired_key_starts_afresh(client, key, app, settings):
    first = post(client, key, BODY)
    set_records(app, IDEMPOTENCY_TTL - timedelta(minutes=1))
    assert post(client, key, OTHER).status_code == 422  # still kept just before the TTL
    set_records(app, IDEMPOTENCY_TTL + timedelta(seconds=1))
    fresh = post(client, key, OTHER)
    assert fresh.status_code == 202 and REPLAYED_HEADER not in fresh.headers
    assert fresh.get_json()["id"] != first.get_json()["id"] and count(settings, Job) == 2


@pytest.mark.parametrize("value", ["", "x" * 256, "caf\u00e9", "tab\there", "nul\x01"])
def test_a_malformed_key_is_refused_by_name(client, key, settings, value):
    response = post(client, key, BODY, idempotency_key=value)
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert error["code"] == "invalid_header" and error["field"] == HEADER
    assert count(settings, Job) == 0 and count(settings, IdempotencyRecord) == 0


def test_the_longest_key_is_accepted(client, key):
    longest = "~ !" + "k" * 252
    assert post(client, key, BODY, idempotency_key=longest).status_code == 202
    assert post(client, key, BODY, idempotency_key=longest).headers[REPLAYED_HEADER] == "true"


def test_purge_expired_removes_only_old_records(sessions):
    now = utcnow()
    ages = {
        "expired": (IDEMPOTENCY_TTL + timedelta(seconds=1), 202),
        "expired-processing": (IDEMPOTENCY_TTL + timedelta(hours=3), None),
        "young": (IDEMPOTENCY_TTL - timedelta(seconds=1), 202),
        "new": (timedelta(0), None),
    }
    with sessions.begin() as session:
        owner, _ = keys.create_key(session, "alice")
        for name, (age, status_code) in ages.items():
            session.add(
                IdempotencyRecord(
                    api_key_id=owner.id, key=name, request_hash="0" * 64, status_code=status_code,
                    response_body="{}" if status_code else None, created_at=now - age,
                )
            )
    with sessions.begin() as session:
        assert purge_expired(session, now) == 2
    with sessions() as session:
        assert set(session.scalars(select(IdempotencyRecord.key))) == {"young", "new"}


def test_a_slow_request_whose_key_was_taken_over_leaves_its_successor_alone(settings, key, gate):
    app = create_app(settings)
    headers = {**auth(key), HEADER: "k-1"}

    def submit(base):
        return requests.post(f"{base}/v1/jobs", json=BODY, headers=headers, timeout=60)

    with serve_api(settings) as base, ThreadPoolExecutor(2) as pool:
        slow = pool.submit(submit, base)
        gate.wait_for(1)
        set_records(app, PROCESSING_TIMEOUT + timedelta(seconds=1))  # it looks abandoned
        successor = pool.submit(submit, base)
        gate.wait_for(2)  # the successor took the key over and is running too
        gate.let_go(0)
        assert slow.result().status_code == 202
        assert submit(base).status_code == 409  # the successor's reservation is intact
        gate.let_go(1)
        assert successor.result().status_code == 202
        replay = submit(base)
    app.extensions["csm_batch"].sessions.kw["bind"].dispose()
    assert replay.headers[REPLAYED_HEADER] == "true"
    assert replay.json()["id"] == successor.result().json()["id"] != slow.result().json()["id"]
