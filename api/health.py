"""Liveness and readiness probes."""
from __future__ import annotations

import logging

from flask import jsonify
from sqlalchemy import text

from api.services import db, services

log = logging.getLogger(__name__)


def healthz():
    return jsonify({"status": "ok"})


def readyz():
    checks = {"database": _check_database, "broker": _check_broker, "object_store": _check_store}
    failed = []
    for name, check in checks.items():
        try:
            check()
        except Exception as exc:
            log.warning("event=not_ready dependency=%s error=%r", name, exc)
            failed.append(name)
    if failed:
        return jsonify({"status": "unavailable", "failed": failed}), 503
    return jsonify({"status": "ready"})


def _check_database() -> None:
    db().execute(text("SELECT 1"))


def _check_broker() -> None:
    with services().producer.connection_for_write() as connection:
        connection.ensure_connection(max_retries=1, timeout=2)


def _check_store() -> None:
    services().store.check()
