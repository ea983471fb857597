"""Helpers of the outage tests: the service wired through proxies, and what each case reports."""
from __future__ import annotations

import hashlib
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import requests
from sqlalchemy import select

from support import s3_client
from jobs.db import make_engine, make_session_factory
from jobs.models import Job
from proxy import FaultProxy

REPORT: list[str] = []  # one line per case, printed at the end of the run
TERMINAL = {"succeeded", "partially_succeeded", "failed", "canceled"}
# Short timeouts, leases and sweeps, so that a fault and its recovery fit in seconds.
FAST = {
    "DATABASE_CONNECT_TIMEOUT_S": "2",
    "DATABASE_TIMEOUT_S": "2",
    "BROKER_TIMEOUT_S": "1",
    "S3_CONNECT_TIMEOUT_S": "1",
    "S3_READ_TIMEOUT_S": "2",
    "S3_MAX_ATTEMPTS": "2",
    "LEASE_S": "3",
    "SWEEP_INTERVAL_S": "1",
    "REQUEUE_AFTER_S": "3",
    "WORKER_BATCH_SIZE": "8",
    "OMP_NUM_THREADS": "1",  # torch threads only fight each other on a small shared machine
    "CSM_DEVICE": "cpu",
}


@dataclass
class Outage:
    """The service wired through proxies; `direct_*` reach the real servers, for checking."""

    base: str
    key: str
    environ: dict[str, str]
    proxies: dict[str, FaultProxy]
    direct_database_url: str
    bucket: str
    s3_endpoint: str
    session: requests.Session = field(default_factory=requests.Session)

    def __post_init__(self):
        self.session.headers["Authorization"] = f"Bearer {self.key}"

    def submit_csv(self, rows: int, max_audio_length_ms: int) -> tuple[str, list[str]]:
        """A CSV batch of `rows` texts: (batch id, job ids)."""
        body = "text,max_audio_length_ms\n" + "".join(f"Row {i}.,{max_audio_length_ms}\n" for i in range(rows))
        batch = self.session.post(
            f"{self.base}/v1/batches", data=body, headers={"Content-Type": "text/csv"}, timeout=30
        )
        assert batch.status_code == 202, batch.text
        batch_id = batch.json()["id"]
        manifest = self.session.get(f"{self.base}/v1/batches/{batch_id}/manifest", timeout=30).json()
        return batch_id, [row["job_id"] for row in manifest["rows"]]

    def rows(self, job_ids) -> list[Job]:
        engine = make_engine(self.direct_database_url)
        try:
            with make_session_factory(engine)() as session:
                return list(session.scalars(select(Job).where(Job.id.in_(list(job_ids)))))
        finally:
            engine.dispose()

    def wait_terminal(self, job_ids, timeout: float) -> list[Job]:
        deadline = time.monotonic() + timeout
        while True:
            rows = self.rows(job_ids)
            if all(row.status in TERMINAL for row in rows) or time.monotonic() > deadline:
                return rows
            time.sleep(0.5)

    def mismatched_objects(self, rows: list[Job]) -> list[str]:
        """Succeeded jobs whose stored object is not the one their row names (by sha256)."""
        s3 = s3_client(self.s3_endpoint)
        wrong = []
        for row in rows:
            if row.status == "succeeded":
                data = s3.get_object(Bucket=self.bucket, Key=row.audio_key)["Body"].read()
                if hashlib.sha256(data).hexdigest() != row.audio_sha256:
                    wrong.append(str(row.id))
        return wrong


def through(url: str, proxy: FaultProxy) -> str:
    """`url` with its host:port replaced by the proxy's."""
    parts = urlsplit(url)
    return url.replace(f"{parts.hostname}:{parts.port}", f"127.0.0.1:{proxy.port}", 1)


def log_path(outage: Outage, name: str) -> Path:
    return Path(outage.environ["CSM_DATA_DIR"]) / f"{name}.log"


def states(rows: list[Job]) -> dict[str, int]:
    return dict(Counter(row.status for row in rows))
