"""Workers killed mid-render: a whole worker SIGKILLed during a CSV batch whose jobs were claimed
together in one GPU batch, and a task killed by Celery's hard time limit. No job is lost and
none completes twice (each job's success is logged once, across every worker)."""
import os
import re
import signal
import time
from collections import Counter
from pathlib import Path

import pytest

from faults_support import REPORT, TERMINAL, log_path, states
from jobs.queue import MAINTENANCE_QUEUE, QUEUES
from support import run_worker, wait_for_log

RECOVERY_BOUND_S = 120
SUCCEEDED = re.compile(r"event=job_succeeded job_id=(\S+)")


@pytest.fixture(scope="module")
def sweeper(outage_api):
    """The sweeper (and beat) in a maintenance worker of its own, alive while GPU workers die."""
    with run_worker(
        outage_api.environ, log_path(outage_api, "maintenance"), "--beat",
        app="worker.maintenance:app", queues=(MAINTENANCE_QUEUE,),
    ) as process:
        yield process


def gpu_worker(outage, name: str, **environ: str):
    return run_worker({**outage.environ, **environ}, log_path(outage, name), queues=QUEUES)


def wait_running(outage, job_ids, at_least: int) -> list[str]:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        running = [str(row.id) for row in outage.rows(job_ids) if row.status == "running"]
        if len(running) >= at_least:
            return running
        time.sleep(0.1)
    raise TimeoutError(f"fewer than {at_least} jobs running after 120 s")


def successes(logs: list[Path]) -> Counter:
    return Counter(job_id for log in logs for job_id in SUCCEEDED.findall(log.read_text(errors="replace")))


def pool_child(worker) -> int:
    """The pid of a concurrency-1 worker's pool process."""
    children = Path(f"/proc/{worker.pid}/task/{worker.pid}/children").read_text().split()
    assert len(children) == 1, children
    return int(children[0])


def check_each_job_once(outage, job_ids, logs, killed_at: float, case: str, running: list[str]) -> None:
    rows = outage.wait_terminal(job_ids, RECOVERY_BOUND_S)
    recovered_s = time.monotonic() - killed_at
    done = successes(logs)
    REPORT.append(
        f"{case}: jobs={len(rows)} claimed together when killed={len(running)} states={states(rows)} "
        f"attempts={dict(Counter(row.attempts for row in rows))} all terminal {recovered_s:.1f}s after the kill; "
        f"successes logged per job={set(done[str(row.id)] for row in rows)}"
    )
    assert all(row.status in TERMINAL for row in rows), states(rows)
    assert all(row.status == "succeeded" for row in rows), [(r.status, r.error_code) for r in rows]
    assert all(done[str(row.id)] == 1 for row in rows), done
    assert all(row.attempts == 2 for row in rows if str(row.id) in running)
    assert outage.mismatched_objects(rows) == []


def test_a_worker_killed_during_a_batch_with_riders_loses_no_job(outage_api, sweeper):
    outage = outage_api
    first, second = log_path(outage, "gpu-killed"), log_path(outage, "gpu-after-kill")
    with gpu_worker(outage, "gpu-killed") as doomed:
        # One message: its worker claims them all at once. 2 s of audio each keeps the batch
        # rendering well past the kill on an idle machine (400 ms finished before it there).
        _, job_ids = outage.submit_csv(8, 2000)
        running = wait_running(outage, job_ids, at_least=2)
        time.sleep(0.5)  # mid-render
        os.killpg(doomed.pid, signal.SIGKILL)
        killed_at = time.monotonic()
        doomed.wait()
    with gpu_worker(outage, "gpu-after-kill"):
        check_each_job_once(outage, job_ids, [first, second], killed_at, "worker SIGKILLed mid-batch", running)


def test_a_task_killed_by_the_hard_time_limit_loses_no_job(outage_api, sweeper):
    outage = outage_api
    log = log_path(outage, "gpu-hard-limit")
    limits = {"TASK_SOFT_TIME_LIMIT_S": "6", "TASK_TIME_LIMIT_S": "7"}
    with gpu_worker(outage, "gpu-hard-limit", **limits) as worker:
        _, job_ids = outage.submit_csv(4, 160)
        running = wait_running(outage, job_ids, at_least=1)
        # Frozen as in a GPU call that never returns: the soft limit's signal cannot be handled,
        # so only the hard limit (the parent's SIGKILL) ends the task.
        os.kill(pool_child(worker), signal.SIGSTOP)
        stopped_at = time.monotonic()
        wait_for_log(log, "Hard time limit", worker, timeout=30)
        check_each_job_once(outage, job_ids, [log], stopped_at, "task killed by the hard time limit", running)
