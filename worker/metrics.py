"""A worker's own figures for Prometheus, correct under the prefork pool.

Pool children count in prometheus-client's multiprocess mode (a file per child under
PROMETHEUS_MULTIPROC_DIR); the worker's main process serves their sum on WORKER_METRICS_PORT,
so one scrape target per worker sees every child, and counts survive a child's replacement.
The pipeline calls the record functions below at a few points; each does nothing when the
port is not set. The queue's state (jobs by status, backlog) is the API's, read from SQL.
"""
from __future__ import annotations

import logging

from config import Settings

log = logging.getLogger(__name__)

_enabled = False
_figures = None  # this process's metric objects, made when it first counts


def enable(settings: Settings) -> None:
    """Called where the worker app is made: forked children inherit the switch."""
    global _enabled
    _enabled = settings.worker_metrics_port is not None


class _Figures:
    def __init__(self):
        from prometheus_client import Counter

        # registry=None: in multiprocess mode the figures travel through the files.
        self.webhooks = Counter(
            "csm_webhook_attempts", "Webhook delivery attempts by outcome.", ["outcome"], registry=None
        )


def _get() -> _Figures | None:
    global _figures
    if _enabled and _figures is None:
        _figures = _Figures()
    return _figures


def webhook_attempt(outcome: str) -> None:
    """delivered, retrying or failed (no attempts left, or the URL is gone)."""
    if figures := _get():
        figures.webhooks.labels(outcome).inc()


def serve(settings: Settings) -> None:
    """In the worker's main process, before the pool starts: an empty folder for the children's
    files (old ones would add a previous run's counts) and the HTTP server summing them."""
    from prometheus_client import CollectorRegistry, start_http_server
    from prometheus_client.multiprocess import MultiProcessCollector

    folder = settings.metrics_dir
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob("*.db"):
        stale.unlink()
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(folder))
    start_http_server(settings.worker_metrics_port, registry=registry)
    log.info("event=metrics_serving port=%d folder=%s", settings.worker_metrics_port, folder)


def process_exited(pid: int, settings: Settings) -> None:
    """A child is gone: its live-only gauges (frames per second) stop counting."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(pid, str(settings.metrics_dir))
