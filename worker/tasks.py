"""Thin Celery tasks: ids in, the SQL row is the source of truth."""
from __future__ import annotations

import logging
import uuid

from celery import Celery, Task

from config import Settings
from jobs import repository
from jobs.queue import RENDER_TASK, SWEEP_TASK, publish_render
from worker import render, runtime

log = logging.getLogger(__name__)


def register_tasks(app: Celery, settings: Settings) -> None:
    @app.task(name=RENDER_TASK, bind=True, max_retries=None)
    def render_job(task: Task, job_id: str) -> str:
        try:
            return render.render_job(uuid.UUID(job_id), runtime.current(settings)).status
        except render.RetryLater as exc:
            raise task.retry(countdown=exc.countdown) from exc

    @app.task(name=SWEEP_TASK, ignore_result=True)
    def sweep() -> None:
        with runtime.current(settings).sessions.begin() as session:
            result = repository.sweep(
                session, requeue_after_s=settings.requeue_after_s, max_attempts=settings.max_attempts
            )
        # Published after commit: a worker that claims it sees the re-queued row.
        for job_id in result.requeued:
            publish_render(app, job_id)
            log.info("event=job_requeued job_id=%s", job_id)
        for job_id in result.failed:
            log.warning("event=job_failed job_id=%s code=worker_lost", job_id)
