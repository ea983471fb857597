"""Thin Celery tasks: ids in, the SQL row is the source of truth."""
from __future__ import annotations

import logging
import uuid

from celery import Celery, Task

from config import Settings
from jobs import idempotency, repository
from jobs.models import utcnow
from jobs.queue import DISPATCH_TASK, RENDER_TASK, SWEEP_TASK, publish_render
from worker import dispatch, render, runtime

log = logging.getLogger(__name__)


def register_tasks(app: Celery, settings: Settings) -> None:
    @app.task(name=RENDER_TASK, bind=True, max_retries=None)
    def render_job(task: Task, job_id: str) -> str:
        outcome = render.render_job(uuid.UUID(job_id), runtime.current(settings))
        if outcome.retry_in_s is not None:
            # The job went back to queued; other jobs released with it are found by this
            # retry (it fills its batch from the queue) or by the sweeper.
            raise task.retry(countdown=outcome.retry_in_s)
        return outcome.status

    @app.task(name=SWEEP_TASK, ignore_result=True)
    def sweep() -> None:
        with runtime.process_sessions(settings).begin() as session:
            result = repository.sweep(
                session, requeue_after_s=settings.requeue_after_s, max_attempts=settings.max_attempts
            )
            idempotency.purge_expired(session, utcnow())
        # Published after commit: a worker that claims it sees the re-queued row.
        for job_id, queue in result.requeued:
            publish_render(app, job_id, queue)
            log.info("event=job_requeued job_id=%s", job_id)
        for job_id in result.failed:
            log.warning("event=job_failed job_id=%s code=worker_lost", job_id)

    @app.task(name=DISPATCH_TASK, ignore_result=True)
    def dispatch_webhooks() -> None:
        dispatch.dispatch_due(settings, runtime.process_sessions(settings))
