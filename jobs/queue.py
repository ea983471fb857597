"""The broker contract shared by the producer (API) and the consumer (worker).

Tasks are called by name, so the API never imports worker code.
"""
from __future__ import annotations

import uuid

from celery import Celery

from config import Settings

RENDER_TASK = "csm_batch.render_job"
SWEEP_TASK = "csm_batch.sweep"
DISPATCH_TASK = "csm_batch.dispatch_webhooks"
SYNC_QUEUE = "sync"  # jobs a request waits for: a worker filling its GPU batch takes them first
RENDER_QUEUE = "render"  # jobs submitted one by one
BATCH_QUEUE = "batch"  # jobs of CSV batches: a separate queue, so they never hold singles up
QUEUES = (SYNC_QUEUE, RENDER_QUEUE, BATCH_QUEUE)  # what GPU workers consume
MAINTENANCE_QUEUE = "maintenance"  # the sweeper: no model needed
WEBHOOKS_QUEUE = "webhooks"  # the webhook dispatcher: apart, so slow receivers never delay the sweeper
ALL_QUEUES = (*QUEUES, MAINTENANCE_QUEUE, WEBHOOKS_QUEUE)  # one worker doing everything (demo, tests)


def make_celery(settings: Settings, name: str = "csm_batch") -> Celery:
    app = Celery(name, broker=settings.broker_url)
    app.conf.update(
        task_ignore_result=True,  # the SQL row holds every outcome
        task_default_queue=RENDER_QUEUE,
        task_routes={SWEEP_TASK: {"queue": MAINTENANCE_QUEUE}, DISPATCH_TASK: {"queue": WEBHOOKS_QUEUE}},
        task_serializer="json",
        accept_content=["json"],
        broker_connection_retry_on_startup=True,
        broker_connection_timeout=settings.broker_timeout_s,
        broker_transport_options=_transport_options(settings),
        # A publish that fails is tried once more on a fresh connection, then given up: the
        # API still answers (the row is committed; the sweeper republishes).
        task_publish_retry_policy={"max_retries": 1, "interval_start": 0, "interval_step": 0, "interval_max": 0},
    )
    return app


def _transport_options(settings: Settings) -> dict:
    if not settings.uses_embedded_broker:
        return {
            "visibility_timeout": settings.visibility_timeout_s,
            # Without these a Redis that accepts connections but never answers hangs every
            # publish and check forever.
            "socket_timeout": settings.broker_timeout_s,
            "socket_connect_timeout": settings.broker_timeout_s,
        }
    messages, control = settings.broker_dir / "messages", settings.broker_dir / "control"
    for folder in (messages, control):
        folder.mkdir(parents=True, exist_ok=True)
    # Producer and consumer share one folder: a message written is a message read. The
    # control folder (exchange bindings) would otherwise land in the working directory.
    return {
        "data_folder_in": str(messages),
        "data_folder_out": str(messages),
        "control_folder": str(control),
    }


def publish_render(app: Celery, job_id: uuid.UUID, queue: str = RENDER_QUEUE, countdown: float | None = None) -> None:
    """A wake-up for `job_id`; `countdown`: not before this many seconds."""
    app.send_task(RENDER_TASK, args=[str(job_id)], queue=queue, countdown=countdown or None)


def waiting_messages(app: Celery, queues: tuple[str, ...]) -> dict[str, int]:
    """Messages waiting in each broker queue; those a worker already holds are not counted."""
    with app.connection_for_read() as connection:
        channel = connection.default_channel
        # A declare creates nothing on Redis or the filesystem broker; it answers the length.
        return {queue: channel.queue_declare(queue=queue).message_count for queue in queues}
