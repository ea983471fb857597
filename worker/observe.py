"""A worker's logs and metrics, wired to Celery's signals by create_worker_app."""
from __future__ import annotations

import logging
import os

from celery.signals import (
    after_setup_logger,
    after_setup_task_logger,
    task_postrun,
    task_prerun,
    worker_init,
    worker_process_shutdown,
)

import logs
from config import Settings
from jobs.queue import RENDER_TASK
from worker import metrics

_task_tokens: dict[str, object] = {}  # task id -> its bound log fields (one task at a time per child)


def connect(settings: Settings) -> None:
    metrics.enable(settings)
    if settings.worker_metrics_port is not None:

        @worker_init.connect(weak=False, dispatch_uid="csm_batch.serve_metrics")
        def serve_metrics(**_kwargs) -> None:
            metrics.serve(settings)

        @worker_process_shutdown.connect(weak=False, dispatch_uid="csm_batch.child_exited")
        def child_exited(**_kwargs) -> None:
            metrics.process_exited(os.getpid(), settings)

    if settings.log_format == "json":

        @after_setup_logger.connect(weak=False, dispatch_uid="csm_batch.json_lines")
        @after_setup_task_logger.connect(weak=False, dispatch_uid="csm_batch.json_task_lines")
        def json_lines(logger: logging.Logger, **_kwargs) -> None:
            # Celery sets up its handlers; only their format changes.
            for handler in logger.handlers:
                handler.setFormatter(logs.JsonFormatter())
            logging.captureWarnings(True)

    @task_prerun.connect(weak=False, dispatch_uid="csm_batch.bind_task")
    def bind_task(task_id: str, task, args=(), **_kwargs) -> None:
        job_id = args[0] if task.name == RENDER_TASK and args else None
        _task_tokens[task_id] = logs.bind(task_id=task_id, job_id=job_id)

    @task_postrun.connect(weak=False, dispatch_uid="csm_batch.unbind_task")
    def unbind_task(task_id: str, **_kwargs) -> None:
        token = _task_tokens.pop(task_id, None)
        if token is not None:
            logs.unbind(token)
