"""One JSON error shape everywhere: {"error": {"code", "message", "field"?, "problems"?}}.

An error about the request's input lists every bad field in `problems`, [{"field", "message"}],
in the order of the model's fields; `field` and `message` repeat the first of them.

Routes marked with `openai_errors` (the OpenAI-compatible ones) answer the shape OpenAI's
clients parse instead: {"error": {"message", "type", "param", "code"}}, with 400 for invalid
fields (OpenAI's BadRequestError) where the rest of the API says 422; `param` is the first bad
field.
"""
from __future__ import annotations

import logging

from flask import Flask, current_app, jsonify, request
from sqlalchemy.exc import DBAPIError, OperationalError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from werkzeug.exceptions import HTTPException

from jobs.fields import Problem
from storage import StorageUnavailable

log = logging.getLogger(__name__)

RETRY_AFTER_S = 5  # what a 503 asks clients to wait before trying again


class ApiError(Exception):
    def __init__(
        self, status: int, code: str, message: str, field: str | None = None, retry_after_s: int | None = None,
        headers: dict[str, str] | None = None, problems: list[Problem] | None = None,
    ):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.retry_after_s = retry_after_s
        self.headers = headers or {}
        # Every bad field; an error naming one field lists it alone.
        self.problems = problems if problems is not None else [Problem(field, message)] if field else []


def openai_errors(view):
    """Marks a view whose errors (authentication included) take OpenAI's shape."""
    view.openai_errors = True
    return view


def error_response(
    status: int, code: str, message: str, field: str | None = None, retry_after_s: int | None = None,
    headers: dict[str, str] | None = None, problems: list[Problem] = (),
):
    view = current_app.view_functions.get(request.endpoint) if request.endpoint else None
    if getattr(view, "openai_errors", False):
        kind = "server_error" if status >= 500 else "invalid_request_error"
        body = {"error": {"message": message, "type": kind, "param": field, "code": code}}
        status = 400 if status == 422 else status
    else:
        body = {"error": {"code": code, "message": message} | ({"field": field} if field is not None else {})}
        if problems:
            body["error"]["problems"] = [{"field": p.field, "message": p.message} for p in problems]
    response = jsonify(body)
    response.headers.update(headers or {})
    if retry_after_s is not None:
        response.headers["Retry-After"] = str(retry_after_s)
    return response, status


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def api_error(exc: ApiError):
        return error_response(
            exc.status, exc.code, exc.message, exc.field, exc.retry_after_s, exc.headers, exc.problems
        )

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        code = (exc.name or "error").lower().replace(" ", "_")
        # Keep the exception's own headers (a 405's Allow), not its HTML Content-Type.
        headers = {name: value for name, value in exc.get_headers() if name.lower() != "content-type"}
        return error_response(exc.code or 500, code, exc.description or exc.name, headers=headers)

    @app.errorhandler(SQLAlchemyError)
    def database_error(exc: SQLAlchemyError):
        if not _database_unreachable(exc):
            return unexpected(exc)
        return unavailable("database", exc)

    @app.errorhandler(StorageUnavailable)
    def storage_error(exc: StorageUnavailable):
        return unavailable("object_store", exc)

    @app.errorhandler(Exception)
    def unexpected(exc: Exception):
        log.exception("event=unhandled_error")
        return error_response(500, "internal_error", "internal server error")


def unavailable(dependency: str, exc: Exception):
    """503 with Retry-After: a server the request needs is down or not answering."""
    log.warning("event=dependency_unavailable dependency=%s error=%r", dependency, exc)
    return error_response(
        503, f"{dependency}_unavailable", f"the {dependency.replace('_', ' ')} is unavailable; try again shortly",
        retry_after_s=RETRY_AFTER_S,
    )


def _database_unreachable(exc: SQLAlchemyError) -> bool:
    """Lost or refused connections, timeouts, a full pool: not a bug in the request."""
    if isinstance(exc, (OperationalError, PoolTimeout)):
        return True
    return isinstance(exc, DBAPIError) and exc.connection_invalidated
