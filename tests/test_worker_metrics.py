"""Workers' own metrics under the prefork pool: every child's counts, summed on one port, and
what rendering moves there and on the API's /metrics."""
import time

import pytest
import requests

from api import create_app
from provision import create_key, init
from jobs.queue import WEBHOOKS_QUEUE
from support import free_port, free_redis_db, make_settings, metric_samples, run_worker, wait_until_done
from webhook_receiver import run_receiver

SERVICE_VARIABLES = ("S3_BUCKET", "S3_ENDPOINT_URL", "S3_PUBLIC_ENDPOINT_URL")


def scrape(url: str) -> dict:
    return metric_samples(requests.get(url, timeout=30).text)


def value(figures: dict, name: str, **labels: str) -> float:
    return figures.get((name, frozenset(labels.items())), 0.0)


def attempts(figures: dict, outcome: str) -> float:
    return value(figures, "csm_webhook_attempts_total", outcome=outcome)


@pytest.fixture
def receiver():
    with run_receiver() as receiver:
        yield receiver


def test_webhook_attempts_of_every_child_add_up(tmp_path, receiver, postgres_database):
    """A webhooks worker with two children, each replaced after every task: the dispatcher's
    attempts land in many processes, and the main process's port counts them all."""
    port = free_port()
    environ = {
        **{name: "" for name in SERVICE_VARIABLES},
        "CSM_DATA_DIR": str(tmp_path),
        "DATABASE_URL": postgres_database(),
        "BROKER_URL": free_redis_db(),
        "WEBHOOK_ALLOW_PRIVATE": "true",
        "WEBHOOK_RETRY_SCALE": "0.0005",
        "WEBHOOK_DISPATCH_INTERVAL_S": "0.3",
        "WEBHOOK_DISPATCH_BUDGET_S": "0.001",  # one attempt per run: runs, so children, share them
        "WORKER_METRICS_PORT": str(port),
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"),
    }
    settings = make_settings(**environ)
    init(settings)
    auth = {"Authorization": f"Bearer {create_key(settings, 'metrics')}"}
    client = create_app(settings).test_client()
    receiver.answers["/flaky"] = [500, 200]
    # Canceled while queued (no GPU worker runs here): each sends one job.canceled event.
    for path in ("/a", "/b", "/c", "/flaky"):
        job = client.post("/v1/jobs", json={"text": "Hi.", "webhook_url": receiver.url(path)}, headers=auth).get_json()
        assert client.post(f"/v1/jobs/{job['id']}/cancel", headers=auth).status_code == 200

    extra = ("--beat", "--max-tasks-per-child", "1")
    log = tmp_path / "maintenance.log"
    with run_worker(environ, log, *extra, app="worker.maintenance:app", queues=(WEBHOOKS_QUEUE,), concurrency=2):
        for path, count in (("/a", 1), ("/b", 1), ("/c", 1), ("/flaky", 2)):
            receiver.wait_for(path, count)
        deadline = time.monotonic() + 30
        while attempts(figures := scrape(f"http://127.0.0.1:{port}/metrics"), "delivered") < 4:
            assert time.monotonic() < deadline, figures
            time.sleep(0.2)
        time.sleep(1)  # nothing more is counted
        figures = scrape(f"http://127.0.0.1:{port}/metrics")
    assert (attempts(figures, "delivered"), attempts(figures, "retrying"), attempts(figures, "failed")) == (4, 1, 0)
    # The attempts were counted by more than one child process.
    assert len(list((tmp_path / "metrics").glob("counter_*.db"))) >= 2


def test_rendering_moves_the_counts_and_histograms(stack):
    """Two texts and a two-line script on the live stack: the API counts them succeeded, the
    worker observed three queue waits and render times, and counted exactly their audio."""
    api_before, worker_before = scrape(f"{stack.base}/metrics"), scrape(stack.worker_metrics)
    client = stack.client
    bodies = [
        {"text": "Counted once.", "max_audio_length_ms": 320},
        {"text": "Counted twice.", "max_audio_length_ms": 320},
        {"script": [{"speaker": 0, "text": "One."}, {"speaker": 1, "text": "Two."}], "max_audio_length_ms": 320},
    ]
    urls = [stack.base + client.post(f"{stack.base}/v1/jobs", json=body).headers["Location"] for body in bodies]
    jobs = [wait_until_done(client, url) for url in urls]
    assert [job["status"] for job in jobs] == ["succeeded"] * 3
    manifest = client.get(stack.local(jobs[2]["result"]["manifest_url"])).json()
    audio_ms = [job["result"]["duration_ms"] for job in jobs[:2]] + [line["duration_ms"] for line in manifest["lines"]]
    api_after, worker_after = scrape(f"{stack.base}/metrics"), scrape(stack.worker_metrics)

    def moved(before: dict, after: dict, name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved(api_before, api_after, "csm_jobs", status="succeeded", queue="render") == 3
    assert moved(worker_before, worker_after, "csm_queue_wait_seconds_count", queue="render") == 3
    assert moved(worker_before, worker_after, "csm_queue_wait_seconds_sum", queue="render") > 0
    assert moved(worker_before, worker_after, "csm_render_seconds_count", kind="text") >= 2  # a batch of 2, or 2 of 1
    assert moved(worker_before, worker_after, "csm_render_seconds_count", kind="script") == 1
    assert moved(worker_before, worker_after, "csm_render_seconds_bucket", kind="script", le="+Inf") == 1
    audio_s = moved(worker_before, worker_after, "csm_audio_rendered_seconds_total")
    assert abs(audio_s - sum(audio_ms) / 1000) <= 0.001 * len(audio_ms)  # durations are rounded to ms
    assert moved(worker_before, worker_after, "csm_frames_generated_total") * 0.08 == pytest.approx(audio_s)
    assert moved(worker_before, worker_after, "csm_generation_seconds_total") > 0
    assert value(worker_after, "csm_worker_frames_per_second") > 0
