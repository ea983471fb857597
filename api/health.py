"""Liveness and readiness probes."""
from __future__ import annotations

import logging
import threading
from concurrent.futures import Future, ThreadPoolExecutor, wait

from flask import current_app, jsonify
from sqlalchemy import text

from api.services import Services

log = logging.getLogger(__name__)

READY_TIMEOUT_S = 3.0  # /readyz answers within this even when a dependency hangs


def healthz():
    return jsonify({"status": "ok"})


def readyz():
    failed = current_app.extensions["csm_batch_readiness"].failures()
    if failed:
        return jsonify({"status": "unavailable", "failed": failed}), 503
    return jsonify({"status": "ready"})


def _check_database(services: Services) -> None:
    with services.sessions() as session:
        session.execute(text("SELECT 1"))


def _check_broker(services: Services) -> None:
    with services.producer.connection_for_write() as connection:
        channel = connection.default_channel  # connects
        if connection.transport.driver_type == "redis":
            channel.client.ping()  # a connection alone does not prove Redis answers


def _check_store(services: Services) -> None:
    services.store.check()


CHECKS = {"database": _check_database, "broker": _check_broker, "object_store": _check_store}


class Readiness:
    """Runs the checks in threads so that a dependency that hangs cannot hang the probe; a
    check still running from an earlier probe is waited on again, not started twice."""

    def __init__(self, services: Services):
        self._services = services
        self._pool = ThreadPoolExecutor(max_workers=len(CHECKS), thread_name_prefix="readyz")
        self._running: dict[str, Future] = {}
        self._lock = threading.Lock()

    def failures(self) -> list[str]:
        """The names of the dependencies that failed or did not answer within READY_TIMEOUT_S."""
        with self._lock:
            for name, check in CHECKS.items():
                if name not in self._running or self._running[name].done():
                    self._running[name] = self._pool.submit(check, self._services)
            futures = dict(self._running)
        wait(futures.values(), timeout=READY_TIMEOUT_S)
        failed = []
        for name, future in futures.items():
            error = future.exception(timeout=0) if future.done() else TimeoutError("no answer")
            if error is not None:
                log.warning("event=not_ready dependency=%s error=%r", name, error)
                failed.append(name)
        return failed
