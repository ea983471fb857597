"""CSV batches at the REST boundary: a bad file is refused whole, a good one created whole."""
import io

from sqlalchemy import func, select

from api_helpers import auth, published_messages, stored_jobs
from jobs.models import Batch, JobLine

GOOD = (
    "text,speaker,script,id,pause_ms\n"
    'Hello there,0,,greeting,\n'
    '"Line one, with a comma",0,talk,conversation,200\n'
    "Line two,1,talk,,\n"
    '"A quoted\nnewline",2,,,\n'
)

BAD = (
    "text,speaker,topk\n"
    "fine,0,5\n"
    ",0,5\n"  # line 3: empty text
    "ok,-4,5\n"  # line 4: bad speaker
    "ok,0,0\n"  # line 5: bad topk
)


def post_csv(client, key, body: str, query: str = ""):
    return client.post(f"/v1/batches{query}", data=body.encode(), headers=auth(key), content_type="text/csv")


def counts(app):
    with app.extensions["csm_batch"].sessions() as session:
        return (
            session.scalar(select(func.count()).select_from(Batch)),
            stored_jobs(app),
            session.scalar(select(func.count()).select_from(JobLine)),
        )


def test_a_good_file_creates_the_batch_and_its_jobs_atomically(client, key, app, settings):
    response = post_csv(client, key, GOOD)
    assert response.status_code == 202
    batch = response.get_json()
    assert response.headers["Location"] == f"/v1/batches/{batch['id']}"
    assert (batch["status"], batch["jobs_total"], batch["jobs_done"]) == ("running", 3, 0)
    assert batch["counts"] == {"queued": 3}
    assert counts(app) == (1, 3, 4)  # two texts and a two-line script
    assert published_messages(settings) >= 1
    assert client.get(response.headers["Location"], headers=auth(key)).get_json() == batch

    manifest = client.get(f"/v1/batches/{batch['id']}/manifest", headers=auth(key)).get_json()
    assert [(r["line"], r["output_name"], r["script_line"], r["status"]) for r in manifest["rows"]] == [
        (2, "greeting.wav", None, "queued"),
        (3, "conversation.wav", 0, "pending"),
        (4, "conversation.wav", 1, "pending"),
        (5, "row-00005.wav", None, "queued"),
    ]
    as_csv = client.get(f"/v1/batches/{batch['id']}/manifest?format=csv", headers=auth(key))
    assert as_csv.mimetype == "text/csv"
    assert as_csv.get_data(as_text=True).splitlines()[0] == "line,output_name,job_id,script_line,status,audio_url,duration_ms,sha256,error"


def test_a_multipart_upload_keeps_its_file_name(client, key):
    response = client.post(
        "/v1/batches", data={"file": (io.BytesIO(GOOD.encode()), "episode.csv")},
        headers=auth(key), content_type="multipart/form-data",
    )
    assert response.status_code == 202 and response.get_json()["filename"] == "episode.csv"


def test_a_bad_file_lists_every_bad_row_and_creates_nothing(client, key, app, settings):
    response = post_csv(client, key, BAD)
    assert response.status_code == 422
    error = response.get_json()["error"]
    assert error["code"] == "invalid_csv"
    assert [(p["line"], p["field"]) for p in error["problems"]] == [(3, "text"), (4, "speaker"), (5, "topk")]
    assert counts(app) == (0, 0, 0) and published_messages(settings) == 0


def test_a_dry_run_reports_without_creating(client, key, app, settings):
    response = post_csv(client, key, GOOD, "?validate_only=true")
    assert response.status_code == 200
    assert response.get_json() == {"valid": True, "rows": 4, "jobs": 3, "scripts": 1}
    assert post_csv(client, key, BAD, "?validate_only=true").status_code == 422
    assert counts(app) == (0, 0, 0) and published_messages(settings) == 0


def test_unknown_columns_and_media_types_are_refused(client, key):
    response = post_csv(client, key, "text,mood\nhi,happy\n")
    assert response.status_code == 422
    assert [p["field"] for p in response.get_json()["error"]["problems"]] == ["mood"]
    wrong = client.post("/v1/batches", json={"text": "hi"}, headers=auth(key))
    assert wrong.status_code == 415


def test_another_keys_batch_is_not_found(client, key, settings):
    from provision import create_key

    batch_id = post_csv(client, key, GOOD).get_json()["id"]
    other = create_key(settings, "bob")
    for path in ("", "/manifest", "/archive"):
        assert client.get(f"/v1/batches/{batch_id}{path}", headers=auth(other)).status_code == 404
