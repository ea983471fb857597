"""Thin Celery tasks: ids in, the SQL row is the source of truth."""
from __future__ import annotations

import uuid

from celery import Celery

from config import Settings
from jobs.queue import DISPATCH_TASK, RENDER_TASK, SWEEP_TASK, publish_render
from worker import dispatch, render, runtime, sweeper


def register_tasks(app: Celery, settings: Settings) -> None:
    @app.task(name=RENDER_TASK)
    def render_job(job_id: str) -> str:
        outcomes = render.render_job(uuid.UUID(job_id), runtime.current(settings))
        # Jobs given back to the queue get a message for when they are due again.
        for due in render.wake_ups(outcomes):
            publish_render(app, due.job_id, due.queue, countdown=due.wake_in_s)
        return outcomes[0].status or outcomes[0].disposition

    @app.task(name=SWEEP_TASK, ignore_result=True)
    def sweep() -> None:
        sessions = runtime.process_sessions(settings)
        sweeper.sweep(app, settings, sessions)
        sweeper.expire_outputs(settings, sessions, runtime.process_store(settings))

    @app.task(name=DISPATCH_TASK, ignore_result=True)
    def dispatch_webhooks() -> None:
        dispatch.dispatch_due(settings, runtime.process_sessions(settings))
