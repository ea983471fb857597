"""GET /metrics: the queue read from SQL at scrape time, in Prometheus' text format."""
from api import create_app
from api_helpers import auth, submit
from support import metric_samples


def scrape(client) -> dict:
    response = client.get("/metrics")
    assert response.status_code == 200 and response.mimetype == "text/plain"
    return metric_samples(response.get_data(as_text=True))


def jobs(figures: dict, status: str, queue: str) -> float:
    return figures[("csm_jobs", frozenset({"status": status, "queue": queue}.items()))]


def test_scrapes_follow_submissions_cancellations_and_batches(client, key, settings):
    before = scrape(client)  # no key needed: Prometheus scrapes without one
    assert jobs(before, "queued", "render") == 0 and jobs(before, "succeeded", "batch") == 0
    assert before[("csm_batches_running", frozenset())] == 0

    first = submit(client, key, {"text": "One."}).get_json()
    submit(client, key, {"text": "Two."})
    client.post(f"/v1/jobs/{first['id']}/cancel", headers=auth(key))
    batch = client.post("/v1/batches", data=b"text\na\nb\nc\n", headers=auth(key), content_type="text/csv").get_json()

    after = scrape(client)
    assert jobs(after, "queued", "render") == 1 and jobs(after, "canceled", "render") == 1
    assert jobs(after, "queued", "batch") == 3
    assert after[("csm_queue_oldest_job_age_seconds", frozenset({"queue": "render"}.items()))] >= 0
    assert after[("csm_batches_running", frozenset())] == 1
    labels = frozenset({"batch_id": batch["id"]}.items())
    assert (after[("csm_batch_jobs_done", labels)], after[("csm_batch_jobs_total", labels)]) == (0, 3)
    assert after[("csm_webhook_events_due", frozenset())] == 0
    # Another API process over the same database answers the same figures (ages aside: time passes).
    def without_ages(figures):
        return {sample: value for sample, value in figures.items() if sample[0] != "csm_queue_oldest_job_age_seconds"}

    assert without_ages(scrape(create_app(settings).test_client())) == without_ages(after)
