"""Redis, PostgreSQL and the S3 server each cut (connections reset) and black-holed (accepted,
never answered) for a few seconds, mid-way through a few dozen jobs: every job ends terminal,
every succeeded job's object matches its row, the API answers in bounded time with 202 or 503
(never 500) while it lasts, /readyz names the server within seconds, and all heals after."""
import time
from collections import Counter

import pytest
import requests

from faults_support import REPORT, TERMINAL, log_path, states
from proxy import BLACKHOLE, CUT
from support import run_worker, s3_client

FAULT_S = 6
PROBE_SUBMISSIONS = 4  # jobs submitted while a fault lasts
JOBS = 24  # half as one CSV batch, half submitted one by one
API_BOUND_S = 10  # the longest the API may take to answer during a fault (3 tries x 1 s for a publish, 2 x 2 s for the database)
READY_BOUND_S = 5  # /readyz answers within 3 s; some slack for a loaded machine
RECOVERY_BOUND_S = 120
DEPENDENCY = {"redis": "broker", "postgresql": "database", "s3": "object_store"}


@pytest.fixture(scope="module")
def worker(outage_api):
    with run_worker(outage_api.environ, log_path(outage_api, "worker"), "--beat") as process:
        yield process


def timed(call, *args, **kwargs):
    started = time.monotonic()
    response = call(*args, timeout=30, **kwargs)
    return response, time.monotonic() - started


def submit(outage, count: int) -> list[str]:
    _, ids = outage.submit_csv(count // 2, 160)
    for i in range(count - len(ids)):
        job = outage.session.post(
            f"{outage.base}/v1/jobs", json={"text": f"Single {i}.", "max_audio_length_ms": 160}, timeout=30
        )
        assert job.status_code == 202, job.text
        ids.append(job.json()["id"])
    return ids


def probe(outage, until: float, job_ids: list[str]) -> list[tuple[str, int, float]]:
    """Polls (and submits a few jobs) while the fault lasts: (what, status, seconds) per request."""
    seen = []
    submitted = 0
    while time.monotonic() < until:
        if submitted < PROBE_SUBMISSIONS:
            submitted += 1
            posted, seconds = timed(
                outage.session.post, f"{outage.base}/v1/jobs", json={"text": "During.", "max_audio_length_ms": 160}
            )
            seen.append(("POST /v1/jobs", posted, seconds))
            if posted.status_code == 202:
                job_ids.append(posted.json()["id"])
        polled, seconds = timed(outage.session.get, f"{outage.base}/v1/jobs/{job_ids[0]}")
        seen.append(("GET /v1/jobs/{id}", polled, seconds))
        time.sleep(0.5)
    for what, response, _ in seen:
        assert response.status_code != 503 or int(response.headers["Retry-After"]) > 0, what
    return [(what, response.status_code, seconds) for what, response, seconds in seen]


def wait_ready(outage, timeout: float) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if outage.session.get(f"{outage.base}/readyz", timeout=30).status_code == 200:
            return time.monotonic() - started
        time.sleep(0.2)
    raise TimeoutError(f"/readyz not 200 within {timeout} s")


@pytest.mark.parametrize("mode", [CUT, BLACKHOLE])
@pytest.mark.parametrize("server", ["redis", "postgresql", "s3"])
def test_an_outage_mid_way_through_jobs_heals(outage_api, worker, server, mode):
    outage = outage_api
    job_ids = submit(outage, JOBS)
    # Mid-way: some jobs are done, most are not.
    deadline = time.monotonic() + 60
    while sum(row.status in TERMINAL for row in outage.rows(job_ids)) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    done_before = sum(row.status in TERMINAL for row in outage.rows(job_ids))

    proxy = outage.proxies[server]
    proxy.fail(mode)
    try:
        fault_started = time.monotonic()
        ready, ready_s = timed(outage.session.get, f"{outage.base}/readyz")
        seen = probe(outage, fault_started + FAULT_S, job_ids)
    finally:
        proxy.heal()
    healed = time.monotonic()
    ready_again_s = wait_ready(outage, 60)
    rows = outage.wait_terminal(job_ids, RECOVERY_BOUND_S)
    recovered_s = time.monotonic() - healed
    codes = Counter(f"{what} {status}" for what, status, _ in seen)
    slowest = max(seconds for _, _, seconds in seen)
    REPORT.append(
        f"{server} {mode} {FAULT_S}s: jobs={len(rows)} (done before fault {done_before}) states={states(rows)} "
        f"readyz={ready.status_code} {ready.json().get('failed')} in {ready_s:.1f}s; "
        f"api={dict(codes)} slowest={slowest:.1f}s; ready again {ready_again_s:.1f}s, "
        f"all terminal {recovered_s:.1f}s after healing"
    )

    assert ready.status_code == 503 and DEPENDENCY[server] in ready.json()["failed"], ready.json()
    assert ready_s < READY_BOUND_S
    assert all(status in (200, 202, 503) for _, status, _ in seen), codes
    assert slowest < API_BOUND_S
    assert all(row.status in TERMINAL for row in rows), states(rows)
    assert outage.mismatched_objects(rows) == []
    assert all(row.status == "succeeded" for row in rows), [(r.status, r.error_code) for r in rows if r.status != "succeeded"]


def test_a_batch_archive_answers_503_or_fails_visibly_when_the_store_fails(outage_api, worker):
    outage = outage_api
    batch_id, job_ids = outage.submit_csv(3, 160)
    assert all(row.status == "succeeded" for row in outage.wait_terminal(job_ids, RECOVERY_BOUND_S))
    url = f"{outage.base}/v1/batches/{batch_id}/archive"

    with outage.proxies["s3"].failing(CUT):
        down = outage.session.get(url, timeout=30)
    assert down.status_code == 503 and down.headers["Retry-After"], down.text
    assert down.json()["error"]["code"] == "object_store_unavailable"

    # An object lost after streaming began: the transfer breaks; it never ends as a short zip.
    second = outage.rows(job_ids[1:2])[0]
    s3_client(outage.s3_endpoint).delete_object(Bucket=outage.bucket, Key=second.audio_key)
    with outage.session.get(url, stream=True, timeout=30) as response:
        assert response.status_code == 200
        with pytest.raises(requests.exceptions.ChunkedEncodingError):
            b"".join(response.iter_content(64 * 1024))
