"""LOG_FORMAT=json: one JSON object a line from the API and the workers, naming the job."""
import json
import logging
import subprocess
import sys
import time

import logs
from support import ROOT, TIMEOUT_S, wait_until_done


def json_lines(text: str) -> list[dict]:
    """Every line from the first JSON one on (Celery prints its banner before logging starts)."""
    lines = text.splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith("{"))
    return [json.loads(line) for line in lines[first:] if line.strip()]


def test_a_line_carries_its_pairs_the_bound_fields_and_the_exception():
    record = logging.LogRecord(
        "worker.render", logging.WARNING, __file__, 1, "event=job_failed job_id=%s code=%s attempt=%d",
        ("j2", "timeout", 3), None,
    )
    token = logs.bind(job_id="j1", batch_id="b1", missing=None)
    try:
        entry = json.loads(logs.JsonFormatter().format(record))
    finally:
        logs.unbind(token)
    assert entry["event"] == "job_failed" and entry["code"] == "timeout" and entry["attempt"] == 3
    assert (entry["job_id"], entry["batch_id"]) == ("j2", "b1")  # the message names its own job
    assert "missing" not in entry and entry["level"] == "WARNING" and entry["logger"] == "worker.render"
    assert entry["message"] == "event=job_failed job_id=j2 code=timeout attempt=3"
    try:
        raise OSError("disk gone")
    except OSError:
        failed = logging.LogRecord("api.errors", logging.ERROR, __file__, 1, "event=unhandled_error", (), sys.exc_info())
    entry = json.loads(logs.JsonFormatter().format(failed))
    assert "OSError: disk gone" in entry["exception"] and "job_id" not in entry  # nothing bound any more


def test_api_lines_are_json_and_name_the_job_of_the_route(tmp_path):
    """The gunicorn entry point with LOG_FORMAT=json: a submission, then an unexpected error
    while serving a job's audio (its file is gone from the store)."""
    program = """
import uuid
from provision import create_key, init
from config import Settings
init(Settings.from_env())  # first: Alembic's logging set-up would replace the API's
from api.wsgi import app, settings
from jobs import repository
auth = {"Authorization": "Bearer " + create_key(settings, "logs")}
client = app.test_client()
job_id = client.post("/v1/jobs", json={"text": "Logged."}, headers=auth).get_json()["id"]
with app.extensions["csm_batch"].sessions.begin() as session:
    claim = repository.claim_job(session, uuid.UUID(job_id), lease_s=60, max_attempts=3)
    result = repository.AudioResult(f"jobs/{job_id}/audio.wav", 100, 24000, 44, "0")
    repository.complete_job(session, claim, result)  # the WAV itself was never stored
assert client.get(f"/v1/jobs/{job_id}/audio", headers=auth).status_code == 500
print(job_id)
"""
    env = {"CSM_DATA_DIR": str(tmp_path), "LOG_FORMAT": "json", "PATH": "/usr/bin:/bin"}
    result = subprocess.run(
        [sys.executable, "-c", program], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    job_id = result.stdout.strip()
    entries = json_lines(result.stderr)
    assert all({"time", "level", "logger", "message"} <= set(entry) for entry in entries)
    queued = [entry for entry in entries if entry.get("event") == "job_queued"]
    assert [(entry["job_id"], entry["lines"]) for entry in queued] == [(job_id, 1)]
    # The error's message does not name the job; the route it happened in does.
    failed = [entry for entry in entries if entry.get("event") == "unhandled_error"]
    assert len(failed) == 1 and failed[0]["job_id"] == job_id and failed[0]["level"] == "ERROR"
    assert "FileNotFoundError" in failed[0]["exception"]


def test_worker_lines_are_json_and_name_their_job_and_batch(stack):
    client = stack.client
    submitted = client.post(f"{stack.base}/v1/jobs", json={"text": "Logged.", "max_audio_length_ms": 320})
    job = wait_until_done(client, stack.base + submitted.headers["Location"])
    batch_url = stack.base + client.post(
        f"{stack.base}/v1/batches", data=b"text,max_audio_length_ms\nA logged row.,320\n",
        headers={"Content-Type": "text/csv"},
    ).headers["Location"]
    deadline = time.monotonic() + TIMEOUT_S
    while (batch := client.get(batch_url).json())["status"] == "running":
        assert time.monotonic() < deadline
        time.sleep(0.3)
    entries = json_lines(stack.worker_log.read_text())
    assert all({"time", "level", "logger", "process", "message"} <= set(entry) for entry in entries)
    mine = [entry for entry in entries if entry.get("job_id") == job["id"]]
    assert {"job_running", "job_succeeded"} <= {entry.get("event") for entry in mine}
    # Every line of the task that rendered it names a job, Celery's own lines included.
    task_id = next(entry["task_id"] for entry in mine if entry.get("event") == "job_succeeded")
    of_task = [entry for entry in entries if entry.get("task_id") == task_id]
    assert any(entry["logger"] == "celery.app.trace" for entry in of_task)
    assert all(entry.get("job_id") for entry in of_task)
    # A batch's job: its lines name the batch too, the engine's included.
    of_batch = [entry for entry in entries if entry.get("batch_id") == batch["id"]]
    assert {"job_running", "job_succeeded"} <= {entry.get("event") for entry in of_batch}
    assert any(entry["logger"] == "csm.generator" for entry in of_batch)
    assert not any("batch_id" in entry for entry in mine)  # a single job names no batch
