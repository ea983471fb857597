"""Audio URLs an <audio> element can play without a bearer header: the local store's signed
/files URLs (served by the API) and S3's presigned URLs."""
import io
import re
import time
import uuid
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests

from api import create_app
from api_helpers import auth, submit
from provision import create_key, init
from jobs import repository
from jobs.errors import JobError
from jobs.formats import FORMATS, audio_format
from jobs.repository import AudioResult, LineResult
from jobs.resource import audio_key, line_key
from jobs.status import JobStatus, LineStatus
from storage import signing
from support import make_settings, s3_environment, serve_api

WAV = b"RIFF" + bytes(range(256)) * 8


def finish(app, job_id: str, *, lines: int = 1, failed_lines: tuple[int, ...] = ()) -> str:
    """Renders a job the way a worker records it: each line's WAV stored, then the master (its
    key is returned)."""
    services = app.extensions["csm_batch"]
    with services.sessions.begin() as session:
        claim = repository.claim_job(session, uuid.UUID(job_id), lease_s=60, max_attempts=3)
        for index in range(lines):
            if index in failed_lines:
                repository.record_line(session, claim, index, LineResult(LineStatus.FAILED, 3, error="silent"))
                continue
            key = line_key(claim.job_id, claim.token, index) if lines > 1 else audio_key(claim.job_id, claim.token, claim.format)
            services.store.put(key, WAV, "audio/wav")
            repository.record_line(session, claim, index, LineResult(LineStatus.SUCCEEDED, 1, key, 100, "x"))
        services.store.put(audio_key(claim.job_id, claim.token, claim.format), WAV, "audio/wav")
        result = AudioResult(audio_key(claim.job_id, claim.token, claim.format), 100, 24_000, len(WAV), "x")
        status = JobStatus.PARTIALLY_SUCCEEDED if failed_lines else JobStatus.SUCCEEDED
        error = (JobError.LINES_FAILED, "some lines failed") if failed_lines else None
        repository.complete_job(session, claim, result, status=status, error=error)
    return result.key


def local_path(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


def test_a_signed_url_plays_the_audio_without_a_key(client, key, app):
    job = submit(client, key, {"text": "Hello."}).get_json()
    assert client.get(f"/v1/jobs/{job['id']}/audio-url", headers=auth(key)).status_code == 409  # queued
    stored_at = finish(app, job["id"])

    answer = client.get(f"/v1/jobs/{job['id']}/audio-url", headers=auth(key))
    assert answer.status_code == 200
    url = answer.get_json()["url"]
    assert urlsplit(url).path == f"/files/{stored_at}"
    expires = int(parse_qs(urlsplit(url).query)["expires"][0])
    assert 0 < expires - time.time() <= 3600
    assert answer.get_json()["expires_at"].endswith("Z")

    audio = client.get(local_path(url))  # no Authorization header
    assert audio.status_code == 200 and audio.data == WAV
    ranged = client.get(local_path(url), headers={"Range": "bytes=4-9"})
    assert ranged.status_code == 206 and ranged.data == WAV[4:10]
    outside = client.get(local_path(url), headers={"Range": f"bytes={len(WAV) + 10}-"})
    assert outside.status_code == 416 and outside.get_json()["error"]["code"] == "requested_range_not_satisfiable"


@pytest.mark.parametrize("format_name", FORMATS)
def test_a_signed_url_serves_each_format_with_the_type_s3_stores(client, key, app, format_name):
    job = submit(client, key, {"text": "Hello.", "format": format_name}).get_json()
    stored_at = finish(app, job["id"])
    url = client.get(f"/v1/jobs/{job['id']}/audio-url", headers=auth(key)).get_json()["url"]

    audio = client.get(local_path(url))
    # The worker stores each output on S3 with its format's media type; a player gets the same here.
    assert audio.headers["Content-Type"] == audio_format(format_name).media_type
    assert audio.headers["Content-Disposition"] == f"inline; filename={stored_at.rsplit('/', 1)[1]}"
    assert audio.headers["Cache-Control"] == "private, no-store"
    ranged = client.get(local_path(url), headers={"Range": "bytes=4-9"})
    assert ranged.status_code == 206 and ranged.headers["Content-Type"] == audio.headers["Content-Type"]


def test_a_tampered_or_expired_url_is_refused(client, key, app, settings):
    job = submit(client, key, {"text": "Hello."}).get_json()
    stored_at = finish(app, job["id"])
    url = client.get(f"/v1/jobs/{job['id']}/audio-url", headers=auth(key)).get_json()["url"]
    query = parse_qs(urlsplit(url).query)
    other = submit(client, key, {"text": "Another."}).get_json()
    other_at = finish(app, other["id"])

    # The signature of one object does not open another.
    assert client.get(f"/files/{other_at}?{urlsplit(url).query}").status_code == 403
    forged = urlencode({"expires": int(query["expires"][0]) + 10, "signature": query["signature"][0]})
    assert client.get(f"/files/{stored_at}?{forged}").status_code == 403
    secret = signing.load_or_create_secret(settings.url_secret_path)
    past = int(time.time()) - 1
    expired = urlencode({"expires": past, "signature": signing.signature(secret, stored_at, past)})
    refused = client.get(f"/files/{stored_at}?{expired}")
    assert refused.status_code == 403 and refused.get_json()["error"]["code"] == "forbidden"
    assert client.get(f"/files/{stored_at}").status_code == 403


def test_every_api_process_of_a_host_signs_with_the_same_secret(client, key, app, settings):
    job = submit(client, key, {"text": "Hello."}).get_json()
    finish(app, job["id"])
    url = client.get(f"/v1/jobs/{job['id']}/audio-url", headers=auth(key)).get_json()["url"]
    second = create_app(settings).test_client()  # another gunicorn worker, say
    assert second.get(local_path(url)).data == WAV


def test_each_line_of_a_script_has_its_url_as_it_finishes(client, key, app):
    script = [{"speaker": 0, "text": "One."}, {"speaker": 1, "text": "Two."}, {"speaker": 0, "text": "Three."}]
    job = submit(client, key, {"script": script}).get_json()
    assert client.get(f"/v1/jobs/{job['id']}/lines/0/audio-url", headers=auth(key)).status_code == 409
    master_at = finish(app, job["id"], lines=3, failed_lines=(1,))

    first = client.get(f"/v1/jobs/{job['id']}/lines/0/audio-url", headers=auth(key)).get_json()["url"]
    assert urlsplit(first).path == f"/files/{master_at.removesuffix('audio.wav')}lines/000.wav"
    assert client.get(local_path(first)).data == WAV
    failed = client.get(f"/v1/jobs/{job['id']}/lines/1/audio-url", headers=auth(key))
    assert failed.status_code == 409 and failed.get_json()["error"]["code"] == "not_ready"
    assert client.get(f"/v1/jobs/{job['id']}/lines/3/audio-url", headers=auth(key)).status_code == 404
    assert client.get(f"/v1/jobs/{job['id']}/audio-url", headers=auth(key)).status_code == 200  # partial master


def test_another_keys_job_has_no_url(client, key, app, settings):
    job = submit(client, key, {"text": "Mine."}).get_json()
    finish(app, job["id"])
    other = create_key(settings, "mallory")
    assert client.get(f"/v1/jobs/{job['id']}/audio-url", headers=auth(other)).status_code == 404
    assert client.get(f"/v1/jobs/{job['id']}/lines/0/audio-url", headers=auth(other)).status_code == 404


def test_on_s3_the_url_is_presigned_for_the_public_endpoint(tmp_path, s3_endpoint, s3_bucket):
    settings = make_settings(CSM_DATA_DIR=str(tmp_path), **s3_environment(s3_endpoint, s3_bucket))
    init(settings)
    key = create_key(settings, "s3")
    app = create_app(settings)
    with serve_api(settings) as base:
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {key}"
        job = session.post(f"{base}/v1/jobs", json={"text": "On S3."}, timeout=10).json()
        finish(app, job["id"])
        url = session.get(f"{base}/v1/jobs/{job['id']}/audio-url", timeout=10).json()["url"]
        assert urlsplit(url).hostname == "localhost"  # S3_PUBLIC_ENDPOINT_URL
        audio = requests.get(url, timeout=10)  # no Authorization header
        assert audio.status_code == 200 and audio.content == WAV
        # The API serves no files of its own in front of S3.
        assert requests.get(f"{base}/files/jobs/{job['id']}/audio.wav?expires=9999999999&signature=0", timeout=10).status_code == 403
    assert not settings.url_secret_path.exists()


def test_the_page_and_its_files_are_served_with_a_strict_policy(client):
    page = client.get("/ui")
    assert page.status_code == 200 and page.mimetype == "text/html"
    policy = page.headers["Content-Security-Policy"]
    assert "default-src 'self'" in policy and "frame-ancestors 'none'" in policy
    html = page.get_data(as_text=True)
    for asset in ("/ui/static/ui.js", "/ui/static/ui.css"):
        assert asset in html
        assert client.get(asset).status_code == 200
    assert not re.search(r'(src|href)="(https?:)?//', html)  # nothing from another site


def test_batches_are_listed_newest_first(client, key, settings):
    for name in ("first.csv", "second.csv"):
        data = {"file": (io.BytesIO(b"text\nHello\n"), name)}
        assert client.post("/v1/batches", data=data, headers=auth(key), content_type="multipart/form-data").status_code == 202
    listed = client.get("/v1/batches", headers=auth(key)).get_json()["batches"]
    assert [batch["filename"] for batch in listed] == ["second.csv", "first.csv"]
    assert listed[0]["counts"] == {"queued": 1}
    assert [b["filename"] for b in client.get("/v1/batches?limit=1", headers=auth(key)).get_json()["batches"]] == ["second.csv"]
    assert client.get("/v1/batches?limit=0", headers=auth(key)).get_json()["error"]["field"] == "limit"
    assert client.get("/v1/batches", headers=auth(create_key(settings, "bob"))).get_json()["batches"] == []
