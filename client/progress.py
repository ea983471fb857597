"""Waiting for a job or a batch to end, with a progress bar (tqdm, on stderr) and its ETA."""
from __future__ import annotations

import sys
import time
from typing import Callable

from tqdm import tqdm

from client.http import ApiClient
from jobs.status import JobStatus

POLL_S = 0.5
UNFINISHED = frozenset({JobStatus.QUEUED, JobStatus.RUNNING})  # a batch is only ever running


def wait_for_job(api: ApiClient, job_id: str, check: Callable[[], None] | None = None) -> dict:
    """The job's resource once it ended; the bar counts its lines. `check` runs before each
    poll (the demo's: raise when its API or worker died)."""
    return _wait(api, f"/v1/jobs/{job_id}", "lines_done", "lines_total", "line", check)


def wait_for_batch(api: ApiClient, batch_id: str) -> dict:
    """The batch's resource once every job ended; the bar counts jobs."""
    return _wait(api, f"/v1/batches/{batch_id}", "jobs_done", "jobs_total", "job", None)


def _wait(api: ApiClient, path: str, done: str, total: str, unit: str, check: Callable[[], None] | None) -> dict:
    """Polls `path` until its status is final. The bar is redrawn when a count or the status
    changes (a log file gets a line per change, not per poll), and on a terminal at every poll
    so its clock and ETA move."""

    def poll() -> dict:
        if check is not None:
            check()
        return api.get(path)

    resource = poll()
    ticking = sys.stderr.isatty()
    with tqdm(total=resource[total], unit=unit, file=sys.stderr, dynamic_ncols=True, postfix=resource["status"]) as bar:
        while resource["status"] in UNFINISHED:
            time.sleep(POLL_S)
            previous, resource = resource, poll()
            if resource[done] != bar.n or resource["status"] != previous["status"]:
                bar.set_postfix_str(resource["status"], refresh=False)
                bar.update(resource[done] - bar.n)
                bar.refresh()
            elif ticking:
                bar.refresh()
    return resource
