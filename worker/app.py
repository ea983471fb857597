"""The worker's Celery app: the shared broker contract plus long-task reliability settings."""
from __future__ import annotations

from celery import Celery
from celery.signals import celeryd_init, worker_init, worker_process_init, worker_shutting_down

from config import Settings
from jobs.queue import DISPATCH_TASK, SWEEP_TASK, make_celery
from worker import observe, runtime
from worker.tasks import register_tasks

# A child that takes longer than this to start is killed; model loading happens there.
MODEL_LOAD_TIMEOUT_S = 900
# A periodic message not started within its interval (and at least this long, so that clocks of
# beat's and the worker's hosts may differ) is dropped: the next one replaces it, none pile up.
STALE_AFTER_S = 30.0


def create_worker_app(settings: Settings, *, load_model: bool) -> Celery:
    """`load_model`: GPU workers load the model in each child before their first task;
    maintenance workers (sweeper, webhooks) never do."""
    app = make_celery(settings, "csm_batch_worker")
    app.conf.update(
        task_acks_late=True,  # a job's message is acked only after it finished
        worker_prefetch_multiplier=1,  # one reserved message per process: long GPU tasks
        task_reject_on_worker_lost=True,  # a killed child requeues its message at once
        task_soft_time_limit=settings.task_soft_time_limit_s,
        task_time_limit=settings.task_time_limit_s,
        worker_proc_alive_timeout=MODEL_LOAD_TIMEOUT_S,
        beat_schedule={
            "sweep": _periodic(SWEEP_TASK, settings.sweep_interval_s),
            "dispatch-webhooks": _periodic(DISPATCH_TASK, settings.webhook_dispatch_interval_s),
        },
        beat_schedule_filename=str(settings.data_dir / "celerybeat-schedule"),
    )
    if settings.broker_url.startswith("redis://"):
        app.conf.broker_transport = "worker.broker:Transport"  # acks that fail do not stall it
    register_tasks(app, settings)
    observe.connect(settings)
    if load_model:

        @celeryd_init.connect(weak=False)
        def check_model(**_kwargs) -> None:  # the main process, before any child exists
            runtime.check_model_files(settings)

        @worker_process_init.connect(weak=False)
        def load(**_kwargs) -> None:
            runtime.init_child_or_stop(settings)

        _fail_on_cold_shutdown()

    return app


def _periodic(task: str, interval_s: float) -> dict:
    return {"task": task, "schedule": interval_s, "options": {"expires": max(interval_s, STALE_AFTER_S)}}


def _fail_on_cold_shutdown() -> None:
    """A cold shutdown (SIGQUIT: what a child that cannot load the model sends) means failure,
    and Celery names EX_FAILURE for it, but its cold path exits 0: keep that code."""
    workers = []

    @worker_init.connect(weak=False)
    def remember(sender, **_kwargs) -> None:
        workers.append(sender)

    @worker_shutting_down.connect(weak=False)
    def keep_code(how, exitcode, **_kwargs) -> None:
        if how == "Cold":
            for worker in workers:
                worker.exitcode = exitcode
