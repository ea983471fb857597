"""A worker's own figures for Prometheus, correct under the prefork pool.

Pool children count in prometheus-client's multiprocess mode (a file per child under
PROMETHEUS_MULTIPROC_DIR); the worker's main process serves their sum on WORKER_METRICS_PORT,
so one scrape target per worker sees every child, and counts survive a child's replacement.
The pipeline calls the record functions below at a few points; each does nothing when the
port is not set. The queue's state (jobs by status, backlog) is the API's, read from SQL.
"""
from __future__ import annotations

import logging
from datetime import datetime
from typing import Iterable, Sequence

from config import Settings
from jobs.repository import Claim

log = logging.getLogger(__name__)

WAIT_BUCKETS = (0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200)
RENDER_BUCKETS = (0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1200)

_enabled = False
_figures = None  # this process's metric objects, made when it first counts


def enable(settings: Settings) -> None:
    """Called where the worker app is made: forked children inherit the switch."""
    global _enabled
    _enabled = settings.worker_metrics_port is not None


class _Figures:
    def __init__(self):
        from prometheus_client import Counter, Gauge, Histogram

        # registry=None: in multiprocess mode the figures travel through the files.
        self.queue_wait = Histogram(
            "csm_queue_wait_seconds", "From submission to a worker's first claim.", ["queue"],
            buckets=WAIT_BUCKETS, registry=None,
        )
        self.render = Histogram(
            "csm_render_seconds", "From claimed to finished (or given back), per job.", ["kind"],
            buckets=RENDER_BUCKETS, registry=None,
        )
        self.audio = Counter("csm_audio_rendered_seconds", "Seconds of audio generated.", registry=None)
        self.frames = Counter("csm_frames_generated", "Audio frames (80 ms) generated.", registry=None)
        self.generating = Counter(
            "csm_generation_seconds", "Time spent in the model, generating and decoding.", registry=None
        )
        self.fps = Gauge(
            "csm_worker_frames_per_second", "Frames per second of this worker's latest generation pass.",
            multiprocess_mode="livemostrecent", registry=None,
        )
        self.webhooks = Counter(
            "csm_webhook_attempts", "Webhook delivery attempts by outcome.", ["outcome"], registry=None
        )


def _get() -> _Figures | None:
    global _figures
    if _enabled and _figures is None:
        _figures = _Figures()
    return _figures


def claimed(claims: Iterable[Claim], now: datetime) -> None:
    """Jobs just claimed: how long each waited for its first claim (retries are not waits)."""
    if figures := _get():
        for claim in claims:
            if claim.attempt == 1:
                waited = (now - claim.submitted_at).total_seconds()
                figures.queue_wait.labels(claim.queue).observe(max(waited, 0.0))


def rendered(kind: str, seconds: float, jobs: int) -> None:
    """`jobs` jobs of `kind` (text, script) rendered together for `seconds`."""
    if figures := _get():
        for _ in range(jobs):
            figures.render.labels(kind).observe(seconds)


def generated(samples: Sequence[int], sample_rate: int, samples_per_frame: int, seconds: float) -> None:
    """One generation pass: the samples each row produced, and how long the pass took."""
    if figures := _get():
        frames = sum(samples) / samples_per_frame
        figures.audio.inc(sum(samples) / sample_rate)
        figures.frames.inc(frames)
        figures.generating.inc(seconds)
        if seconds > 0:
            figures.fps.set(frames / seconds)


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
