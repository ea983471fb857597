"""Completion signals: a process that finishes a job of the sync queue wakes the request
waiting for it.

With Redis (the broker's server), the commit that makes such a job terminal is followed by an
RPUSH to a list of its own, which expires after SIGNAL_TTL_S; the waiting request BLPOPs that
list, so a signal sent before it started listening is not lost. With the embedded filesystem
broker there is no Redis: the request re-reads SQL with a backoff instead. Either way the SQL
row stays the truth: a lost signal only delays the answer until the next re-read.
"""
from __future__ import annotations

import itertools
import logging
import time
import uuid
from typing import Iterator, Protocol

import redis
from sqlalchemy import event
from sqlalchemy.orm import Session, sessionmaker

from config import Settings
from jobs.queue import SYNC_QUEUE

log = logging.getLogger(__name__)

FINISHED_JOBS = "csm_batch.finished_jobs"  # Session.info: (job id, queue) made terminal in this transaction
SIGNAL_TTL_S = 600
REDIS_WAIT_S = 5.0  # a re-read of SQL at least this often, in case a signal was lost
POLL_FIRST_S, POLL_GROWTH, POLL_MAX_S = 0.05, 1.5, 1.0  # without Redis
CONNECT_TIMEOUT_S = 5.0


class CompletionSignal(Protocol):
    def notify(self, job_ids: list[uuid.UUID]) -> None:
        """Wake whoever waits for these (now terminal) jobs."""

    def wait(self, job_id: uuid.UUID, timeout_s: float) -> None:
        """Return when `job_id` may have finished, or after `timeout_s`."""

    def pauses(self) -> Iterator[float]:
        """How long each successive wait may last before the waiter re-reads SQL."""


class RedisSignal:
    def __init__(self, url: str):
        self.client = redis.Redis.from_url(
            url, socket_connect_timeout=CONNECT_TIMEOUT_S, socket_timeout=REDIS_WAIT_S + CONNECT_TIMEOUT_S
        )

    def notify(self, job_ids: list[uuid.UUID]) -> None:
        pipeline = self.client.pipeline(transaction=False)
        for job_id in job_ids:
            pipeline.rpush(_key(job_id), 1)
            pipeline.expire(_key(job_id), SIGNAL_TTL_S)
        pipeline.execute()

    def wait(self, job_id: uuid.UUID, timeout_s: float) -> None:
        try:
            self.client.blpop([_key(job_id)], timeout=max(timeout_s, 0.01))
        except redis.RedisError as exc:
            # Redis being away must not fail the request: SQL answers once it is re-read.
            log.warning("event=completion_wait_failed job_id=%s error=%r", job_id, exc)
            time.sleep(max(min(timeout_s, POLL_MAX_S), 0.0))

    def pauses(self) -> Iterator[float]:
        return itertools.repeat(REDIS_WAIT_S)


class PollingSignal:
    """No Redis: nothing to send; waiters sleep and re-read SQL, backing off to POLL_MAX_S."""

    def notify(self, job_ids: list[uuid.UUID]) -> None:
        pass

    def wait(self, job_id: uuid.UUID, timeout_s: float) -> None:
        time.sleep(max(timeout_s, 0.0))

    def pauses(self) -> Iterator[float]:
        return (min(POLL_FIRST_S * POLL_GROWTH**n, POLL_MAX_S) for n in itertools.count())


def make_signal(settings: Settings) -> CompletionSignal:
    if settings.broker_url.startswith(("redis://", "rediss://")):
        return RedisSignal(settings.broker_url)
    return PollingSignal()


def record_finished(session: Session, job_id: uuid.UUID, queue: str) -> None:
    """Called in the transaction that makes a job terminal (jobs.repository)."""
    session.info.setdefault(FINISHED_JOBS, []).append((job_id, queue))


def signal_after_commit(sessions: sessionmaker[Session], signal: CompletionSignal) -> None:
    """Sessions of `sessions` notify `signal` of the sync jobs each commit finished."""

    @event.listens_for(sessions, "after_commit")
    def notify(session: Session) -> None:
        finished = session.info.pop(FINISHED_JOBS, [])
        waited_for = [job_id for job_id, queue in finished if queue == SYNC_QUEUE]
        if not waited_for:
            return
        try:
            signal.notify(waited_for)
        except redis.RedisError as exc:
            log.warning("event=completion_signal_failed jobs=%d error=%r", len(waited_for), exc)

    @event.listens_for(sessions, "after_rollback")
    def forget(session: Session) -> None:
        session.info.pop(FINISHED_JOBS, None)


def _key(job_id: uuid.UUID) -> str:
    return f"csm_batch:job_done:{job_id}"
