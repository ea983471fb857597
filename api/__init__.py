"""The Flask API: validates and stores jobs, publishes them, serves status and audio.

It never imports torch or the engine.
"""
from __future__ import annotations

import math
import threading

from flask import Flask, g, request
from flask.json.provider import DefaultJSONProvider

import logs
from api.auth import require_api_key
from api.errors import register_error_handlers
from api.health import Readiness
from api.routes import ROUTES
from api.services import Services, close_db
from api.ui import STATIC_URL_PATH
from config import Settings


def create_app(settings: Settings, services: Services | None = None) -> Flask:
    if services is None:
        services = build_services(settings)
    app = Flask(__name__, static_url_path=STATIC_URL_PATH)  # the web page's files (api/static)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.json = FiniteJSONProvider(app)
    app.json.sort_keys = False
    app.extensions["csm_batch"] = services
    app.extensions["csm_batch_readiness"] = Readiness(services)
    app.extensions["csm_batch_routes"] = ROUTES  # also what GET /openapi.json describes
    for route in ROUTES:
        app.add_url_rule(route.rule, route.endpoint, route.view, methods=[route.method])
    app.before_request(_bind_log_fields)
    app.teardown_request(_unbind_log_fields)
    app.before_request(require_api_key)
    app.teardown_appcontext(close_db)
    register_error_handlers(app)
    return app


class FiniteJSONProvider(DefaultJSONProvider):
    """Never answers NaN or Infinity, which are not JSON (requests holding them are refused; a
    value stored before that rule is written as null)."""

    def dumps(self, obj, **kwargs) -> str:
        try:
            return super().dumps(obj, allow_nan=False, **kwargs)
        except ValueError:
            return super().dumps(_finite(obj), allow_nan=False, **kwargs)


def _finite(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(item) for item in value]
    return value


def _bind_log_fields() -> None:
    """Lines logged while serving a job's or batch's route name it (e.g. an unexpected error)."""
    args = request.view_args or {}
    g.log_token = logs.bind(job_id=args.get("job_id"), batch_id=args.get("batch_id"))


def _unbind_log_fields(_exc: BaseException | None = None) -> None:
    token = g.pop("log_token", None)
    if token is not None:
        logs.unbind(token)


def build_services(settings: Settings) -> Services:
    from api.metrics import make_registry
    from jobs.completion import make_signal, signal_after_commit
    from jobs.db import make_session_factory, service_engine
    from jobs.queue import make_celery
    from storage import make_store, signing

    sessions = make_session_factory(service_engine(settings))
    completions = make_signal(settings)
    signal_after_commit(sessions, completions)  # a canceled sync job wakes its waiting request
    return Services(
        settings=settings,
        sessions=sessions,
        store=make_store(settings),
        producer=make_celery(settings),
        url_secret=None if settings.s3_bucket else signing.load_or_create_secret(settings.url_secret_path),
        metrics=make_registry(sessions),
        completions=completions,
        sync_slots=threading.BoundedSemaphore(settings.sync_max_waiting),
    )
