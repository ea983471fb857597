"""Thin Celery tasks: ids in, the SQL row is the source of truth."""
from __future__ import annotations

import uuid

from celery import Celery, Task

from config import Settings
from jobs.queue import DISPATCH_TASK, RENDER_TASK, SWEEP_TASK
from worker import dispatch, render, runtime, sweeper


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
        sweeper.sweep(app, settings, runtime.process_sessions(settings))

    @app.task(name=DISPATCH_TASK, ignore_result=True)
    def dispatch_webhooks() -> None:
        dispatch.dispatch_due(settings, runtime.process_sessions(settings))
