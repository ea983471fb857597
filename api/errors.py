"""One JSON error shape everywhere: {"error": {"code", "message", "field"?, "problems"?}}, and one
vocabulary of codes: `ErrorCode`, each with its HTTP status. A view raises ApiError with a code;
the exceptions of the job domain and of the servers a request needs are mapped to codes here, by
the Flask error handlers, not in the views.

An error about the request's input lists every bad field in `problems`, [{"field", "message"}],
in the order of the model's fields; `field` and `message` repeat the first of them. A CSV's
problems also name their `line`.

Routes marked with `openai_errors` (the OpenAI-compatible ones) answer the shape OpenAI's
clients parse instead: {"error": {"message", "type", "param", "code"}}, with 400 for invalid
fields (OpenAI's BadRequestError) where the rest of the API says 422; `param` is the first bad
field.
"""
from __future__ import annotations

import logging
from enum import StrEnum

from flask import Flask, current_app, jsonify, request
from sqlalchemy.exc import DBAPIError, OperationalError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from werkzeug.exceptions import HTTPException

from jobs.csv_batch import CsvProblem, CsvRejected
from jobs.fields import FieldError, InvalidRequest, Problem
from jobs.outbox import RedeliveryTooSoon
from storage import StorageUnavailable

log = logging.getLogger(__name__)

RETRY_AFTER_S = 5  # what a 503 asks clients to wait before trying again


class ErrorCode(StrEnum):
    """Every `error.code` the API answers, with its HTTP status. (A job's own `error.code`, what
    its rendering failed with, is jobs.errors.JobError: a job's outcome, not a request's.)"""

    status: int

    def __new__(cls, value: str, status: int):
        member = str.__new__(cls, value)
        member._value_ = str(value)
        member.status = status
        return member

    # The request
    INVALID_JSON = "invalid_json", 400
    INVALID_HEADER = "invalid_header", 400  # the Idempotency-Key
    BAD_REQUEST = "bad_request", 400  # Werkzeug's, e.g. a body that stopped arriving
    UNAUTHORIZED = "unauthorized", 401
    FORBIDDEN = "forbidden", 403  # a /files/ URL's signature
    NOT_FOUND = "not_found", 404
    MODEL_NOT_FOUND = "model_not_found", 404  # OpenAI's code
    METHOD_NOT_ALLOWED = "method_not_allowed", 405
    REQUEST_ENTITY_TOO_LARGE = "request_entity_too_large", 413
    UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type", 415
    REQUESTED_RANGE_NOT_SATISFIABLE = "requested_range_not_satisfiable", 416
    INVALID_FIELD = FieldError.INVALID, 422
    UNSUPPORTED_FORMAT = FieldError.UNSUPPORTED_FORMAT, 422
    UNSUPPORTED_SPEED = FieldError.UNSUPPORTED_SPEED, 422
    UNSUPPORTED_STREAM_FORMAT = FieldError.UNSUPPORTED_STREAM_FORMAT, 422
    INVALID_CSV = "invalid_csv", 422
    IDEMPOTENCY_KEY_REUSED = "idempotency_key_reused", 422
    # The state of what the request names
    NOT_READY = "not_ready", 409  # no output yet
    NOT_CANCELABLE = "not_cancelable", 409
    RUNNING = "running", 409  # not deletable while a job runs
    IN_BATCH = "in_batch", 409  # a batch's job goes with its batch
    VOICE_EXISTS = "voice_exists", 409
    IDEMPOTENCY_KEY_IN_PROGRESS = "idempotency_key_in_progress", 409
    EXPIRED = "expired", 410  # the outputs, after RESULT_TTL_HOURS
    REDELIVERY_TOO_SOON = "redelivery_too_soon", 429
    # A synchronous request's job
    CANCELED = "canceled", 409
    INVALID_INPUT = "invalid_input", 422  # the engine refused the text
    JOB_FAILED = "job_failed", 500
    BUSY = "busy", 503  # SYNC_MAX_WAITING requests already wait
    TIMEOUT = "timeout", 504  # not finished within SYNC_WAIT_S
    # The service
    INTERNAL_ERROR = "internal_error", 500
    DATABASE_UNAVAILABLE = "database_unavailable", 503
    OBJECT_STORE_UNAVAILABLE = "object_store_unavailable", 503

    @classmethod
    def of_http(cls, exc: HTTPException) -> ErrorCode | None:
        """Werkzeug's error by its name (Method Not Allowed: method_not_allowed); None for one
        this vocabulary does not have."""
        member = cls._value2member_map_.get((exc.name or "").lower().replace(" ", "_"))
        return member if member is not None and member.status == exc.code else None

    @classmethod
    def __get_pydantic_json_schema__(cls, core_schema, handler) -> dict:
        """Its schema in GET /openapi.json (api.schemas) lists each code with its status."""
        schema = handler(core_schema)
        listed = "\n".join(f"- `{member}`: {member.status}" for member in cls)
        schema["description"] = (
            "What went wrong, stable and machine-readable, and the HTTP status it comes with (400 for "
            f"422 on the OpenAI-compatible routes):\n\n{listed}"
        )
        return schema


class ApiError(Exception):
    def __init__(
        self, code: ErrorCode, message: str, field: str | None = None, *, retry_after_s: int | None = None,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field
        self.retry_after_s = retry_after_s
        self.headers = headers or {}


def openai_errors(view):
    """Marks a view whose errors (authentication included) take OpenAI's shape."""
    view.openai_errors = True
    return view


def error_response(
    code: ErrorCode, message: str, field: str | None = None, retry_after_s: int | None = None,
    headers: dict[str, str] | None = None, problems: list[Problem] | list[CsvProblem] = (),
):
    status = code.status
    view = current_app.view_functions.get(request.endpoint) if request.endpoint else None
    if getattr(view, "openai_errors", False):
        kind = "server_error" if status >= 500 else "invalid_request_error"
        body = {"error": {"message": message, "type": kind, "param": field, "code": code}}
        status = 400 if status == 422 else status
    else:
        body = {"error": {"code": code, "message": message} | ({"field": field} if field is not None else {})}
        if problems:
            body["error"]["problems"] = [_problem(problem) for problem in problems]
    response = jsonify(body)
    response.headers.update(headers or {})
    if retry_after_s is not None:
        response.headers["Retry-After"] = str(retry_after_s)
    return response, status


def _problem(problem: Problem | CsvProblem) -> dict:
    line = {"line": problem.line} if isinstance(problem, CsvProblem) else {}
    return line | {"field": problem.field, "message": problem.message}


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def api_error(exc: ApiError):
        problems = [Problem(exc.field, exc.message)] if exc.field else []
        return error_response(exc.code, exc.message, exc.field, exc.retry_after_s, exc.headers, problems)

    @app.errorhandler(InvalidRequest)
    def invalid_request(exc: InvalidRequest):
        first = exc.problems[0]
        return error_response(ErrorCode(first.code), first.message, first.field, problems=exc.problems)

    @app.errorhandler(CsvRejected)
    def invalid_csv(exc: CsvRejected):
        message = f"{len(exc.problems)} problem(s) in the file"
        return error_response(ErrorCode.INVALID_CSV, message, problems=exc.problems)

    @app.errorhandler(RedeliveryTooSoon)
    def redelivery_too_soon(exc: RedeliveryTooSoon):
        message = f"{exc}; redeliver after {exc.retry_after_s} s"
        return error_response(ErrorCode.REDELIVERY_TOO_SOON, message, retry_after_s=exc.retry_after_s)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        code = ErrorCode.of_http(exc)
        if code is None:
            return unexpected(exc)
        # Keep the exception's own headers (a 405's Allow), not its HTML Content-Type.
        headers = {name: value for name, value in exc.get_headers() if name.lower() != "content-type"}
        return error_response(code, exc.description or exc.name, headers=headers)

    @app.errorhandler(SQLAlchemyError)
    def database_error(exc: SQLAlchemyError):
        if not _database_unreachable(exc):
            return unexpected(exc)
        return unavailable(ErrorCode.DATABASE_UNAVAILABLE, exc)

    @app.errorhandler(StorageUnavailable)
    def storage_error(exc: StorageUnavailable):
        return unavailable(ErrorCode.OBJECT_STORE_UNAVAILABLE, exc)

    @app.errorhandler(Exception)
    def unexpected(exc: Exception):
        log.exception("event=unhandled_error")
        return error_response(ErrorCode.INTERNAL_ERROR, "internal server error")


def unavailable(code: ErrorCode, exc: Exception):
    """503 with Retry-After: a server the request needs is down or not answering."""
    dependency = code.removesuffix("_unavailable")
    log.warning("event=dependency_unavailable dependency=%s error=%r", dependency, exc)
    return error_response(
        code, f"the {dependency.replace('_', ' ')} is unavailable; try again shortly", retry_after_s=RETRY_AFTER_S,
    )


def _database_unreachable(exc: SQLAlchemyError) -> bool:
    """Lost or refused connections, timeouts, a full pool: not a bug in the request."""
    if isinstance(exc, (OperationalError, PoolTimeout)):
        return True
    return isinstance(exc, DBAPIError) and exc.connection_invalidated
