"""Workers' own metrics under the prefork pool: every child's counts, summed on one port."""
import time

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from api import create_app
from cli import create_key, init
from jobs.queue import WEBHOOKS_QUEUE
from support import free_port, free_redis_db, make_settings, run_worker
from webhook_receiver import run_receiver

SERVICE_VARIABLES = ("S3_BUCKET", "S3_ENDPOINT_URL", "S3_PUBLIC_ENDPOINT_URL")


def scrape(url: str) -> dict:
    """{(name, frozenset(labels)): value} of every sample."""
    text = requests.get(url, timeout=10).text
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def attempts(figures: dict, outcome: str) -> float:
    return figures.get(("csm_webhook_attempts_total", frozenset({"outcome": outcome}.items())), 0)


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
