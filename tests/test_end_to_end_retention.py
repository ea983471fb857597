"""Delete and retention on the real stack, the objects checked on the S3 server itself: a DELETE
leaves nothing under the job's prefix, a deleted voice takes its recording along, and with a
tiny RESULT_TTL_HOURS the worker's sweeper removes outputs and downloads answer 410."""
import time

import requests

from provision import create_key
from support import TIMEOUT_S, make_settings, run_worker, s3_client, serve_api, service_environ, wait_until_done, wav_bytes

SCRIPT = {"script": [{"speaker": 0, "text": "Keep this short."}, {"speaker": 1, "text": "Gone soon."}],
          "max_audio_length_ms": 320}


def objects(environ: dict, prefix: str) -> list[str]:
    listed = s3_client(environ["S3_ENDPOINT_URL"]).list_objects_v2(Bucket=environ["S3_BUCKET"], Prefix=prefix)
    return [entry["Key"] for entry in listed.get("Contents", [])]


def test_a_deleted_job_and_voice_leave_nothing_on_s3(stack):
    client = stack.client
    job = wait_until_done(client, stack.base + client.post(f"{stack.base}/v1/jobs", json=SCRIPT).headers["Location"])
    assert job["status"] == "succeeded", job
    assert len(objects(stack.environ, f"jobs/{job['id']}/")) == 4  # two lines, the master, the manifest

    assert client.delete(f"{stack.base}/v1/jobs/{job['id']}").status_code == 204
    assert objects(stack.environ, f"jobs/{job['id']}/") == []
    assert client.get(f"{stack.base}/v1/jobs/{job['id']}").status_code == 404
    assert client.get(stack.local(job["result"]["audio_url"]), allow_redirects=False).status_code == 404
    other = requests.delete(f"{stack.base}/v1/jobs/{job['id']}", headers={"Authorization": "Bearer nope"})
    assert other.status_code == 401

    uploaded = client.post(
        f"{stack.base}/v1/voices", data={"name": "leaving", "transcript": "A short goodbye."},
        files={"audio": ("leaving.wav", wav_bytes(1.0), "audio/wav")},
    )
    assert uploaded.status_code == 201, uploaded.text
    before = set(objects(stack.environ, "voices/"))
    assert client.delete(f"{stack.base}/v1/voices/leaving").status_code == 204
    assert len(before - set(objects(stack.environ, "voices/"))) == 1


def test_outputs_past_a_tiny_ttl_are_swept_from_s3_and_answer_410(
    tmp_path, tiny_model_dir, postgres_database, s3_endpoint, s3_bucket
):
    environ = service_environ(
        tmp_path, postgres_database(), s3_endpoint, s3_bucket, tiny_model_dir,
        RESULT_TTL_HOURS="0.0005", SWEEP_INTERVAL_S="1",  # outputs live 1.8 s
    )
    settings = make_settings(**environ)
    with serve_api(settings) as base, run_worker(environ, tmp_path / "worker.log", "--beat"):
        client = requests.Session()
        client.headers["Authorization"] = f"Bearer {create_key(settings, 'retention')}"
        text = {"text": "Gone soon.", "max_audio_length_ms": 320}  # a script's routes: tests/api/test_delete_api.py
        job_url = base + client.post(f"{base}/v1/jobs", json=text).headers["Location"]
        batch_url = base + client.post(
            f"{base}/v1/batches", data=b"text,max_audio_length_ms\nA row of a batch.,320\n",
            headers={"Content-Type": "text/csv"},
        ).headers["Location"]
        job, batch = wait_until_done(client, job_url), wait_until_done(client, batch_url)
        assert (job["status"], batch["status"]) == ("succeeded", "succeeded"), (job, batch)
        assert job["expires_at"] > job["finished_at"] and batch["expires_at"] > batch["finished_at"]
        member = client.get(f"{base}/v1/jobs", params={"limit": 2}).json()["jobs"]
        prefixes = [f"jobs/{entry['id']}/" for entry in member]

        deadline = time.monotonic() + TIMEOUT_S
        while any(objects(environ, prefix) for prefix in prefixes):
            assert time.monotonic() < deadline, "the sweeper never removed the expired outputs"
            time.sleep(0.5)
        for url in (job_url + "/audio", job_url + "/audio-url", batch_url + "/manifest", batch_url + "/archive"):
            gone = client.get(url, allow_redirects=False)
            assert gone.status_code == 410 and gone.json()["error"]["code"] == "expired", url
        assert client.get(job_url).json()["status"] == "succeeded"  # the row stays, its outputs are gone
