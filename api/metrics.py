"""GET /metrics: the queue's state, read from SQL at scrape time (Prometheus text format).

Every API process answers the same figures, so Prometheus may scrape any one of them behind a
load balancer. Rendering figures (queue wait, render time, audio seconds, frames per second,
webhook attempts) are counted where they happen and served by each worker (worker/metrics.py).
"""
from __future__ import annotations

from flask import Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from api.services import services
from jobs import stats
from jobs.queue import QUEUES
from jobs.status import JobStatus


class QueueCollector(Collector):
    def __init__(self, sessions):
        self.sessions = sessions

    def collect(self):
        with self.sessions() as session:
            snapshot = stats.snapshot(session)
        jobs = GaugeMetricFamily("csm_jobs", "Jobs by status and queue.", labels=["status", "queue"])
        queues = sorted(set(QUEUES) | {queue for _, queue in snapshot.jobs})
        for status in JobStatus:
            for queue in queues:
                jobs.add_metric([status.value, queue], snapshot.jobs.get((status.value, queue), 0))
        yield jobs
        oldest = GaugeMetricFamily(
            "csm_queue_oldest_job_age_seconds", "Since the submission of the oldest queued job (0 when none).",
            labels=["queue"],
        )
        for queue in queues:
            enqueued_at = snapshot.oldest_queued.get(queue)
            age = (snapshot.taken_at - enqueued_at).total_seconds() if enqueued_at else 0.0
            oldest.add_metric([queue], max(age, 0.0))
        yield oldest
        yield GaugeMetricFamily(
            "csm_webhook_events_pending", "Webhook events not yet delivered or given up.",
            value=snapshot.webhook_events_pending,
        )
        yield GaugeMetricFamily(
            "csm_webhook_events_due", "Webhook events due for an attempt now (the dispatcher's backlog).",
            value=snapshot.webhook_events_due,
        )
        yield GaugeMetricFamily("csm_batches_running", "CSV batches not finished.", value=len(snapshot.running_batches))
        done = GaugeMetricFamily("csm_batch_jobs_done", "Finished jobs of each running batch.", labels=["batch_id"])
        total = GaugeMetricFamily("csm_batch_jobs_total", "Jobs of each running batch.", labels=["batch_id"])
        for batch in snapshot.running_batches:
            done.add_metric([str(batch.id)], batch.jobs_done)
            total.add_metric([str(batch.id)], batch.jobs_total)
        yield done
        yield total


def make_registry(sessions) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(QueueCollector(sessions))
    return registry


def scrape():
    return Response(generate_latest(services().metrics), mimetype=CONTENT_TYPE_LATEST)
