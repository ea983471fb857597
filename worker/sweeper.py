"""The sweeper's run: reclaim dead workers' jobs, send the wake-ups queued jobs lack, purge
expired idempotency keys, delete outputs past RESULT_TTL_HOURS. The rules are in
jobs.repository.sweep, jobs.wakeups and jobs.retention."""
from __future__ import annotations

import logging

from celery import Celery
from sqlalchemy.orm import Session, sessionmaker

from config import Settings
from jobs import idempotency, repository, retention
from jobs.models import utcnow
from jobs.queue import QUEUES, publish_render, waiting_messages
from storage import ObjectStore
from worker.steps import STORAGE_ERRORS

log = logging.getLogger(__name__)


def sweep(app: Celery, settings: Settings, sessions: sessionmaker[Session]) -> repository.SweepResult:
    waiting = waiting_messages(app, QUEUES)  # read first: a message taken meanwhile claimed its jobs
    with sessions.begin() as session:
        result = repository.sweep(
            session, requeue_after_s=settings.requeue_after_s, max_attempts=settings.max_attempts,
            batch_size=settings.worker_batch_size, waiting=waiting,
        )
        idempotency.purge_expired(session, utcnow())
    # Published after commit: a worker that claims it sees the re-queued row.
    for wake_up in result.wake_ups:
        publish_render(app, wake_up.job_id, wake_up.queue)
        log.info("event=job_woken job_id=%s queue=%s covers=%d", wake_up.job_id, wake_up.queue, len(wake_up.covers))
    for job_id in result.failed:
        log.warning("event=job_failed job_id=%s code=worker_lost", job_id)
    return result


def expire_outputs(settings: Settings, sessions: sessionmaker[Session], store: ObjectStore) -> int:
    """Deletes the outputs that RESULT_TTL_HOURS expired, a bounded number per run; returns how
    many jobs lost theirs. A store that fails leaves them for the next run."""
    if settings.result_ttl is None:
        return 0
    try:
        return retention.expire_outputs(sessions, store, utcnow(), settings.result_ttl)
    except STORAGE_ERRORS:
        log.warning("event=expiry_postponed reason=object_store", exc_info=True)
        return 0
