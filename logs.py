"""Log lines: `key=value` text (the default), or one JSON object a line (LOG_FORMAT=json).

Messages are written as `event=... job_id=... key=value`; the JSON form carries each pair as a
field, plus the fields bound to what the process is working on (`bind`: the job of a task or
of a request), so that a line about a job names its `job_id` (and `batch_id`) even when its
message does not.
"""
from __future__ import annotations

import json
import logging
import re
from contextlib import contextmanager
from contextvars import ContextVar, Token
from datetime import datetime, timezone
from typing import Iterator

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"
FORMATS = ("text", "json")
_PAIR = re.compile(r"(?:^|\s)([a-z_][a-z0-9_]*)=(\S+)")
_bound: ContextVar[dict[str, str]] = ContextVar("log_fields", default={})


def bind(**fields) -> Token:
    """Adds fields to every line logged in this context until `unbind(token)`; None values are left out."""
    return _bound.set({**_bound.get(), **{k: str(v) for k, v in fields.items() if v is not None}})


def unbind(token: Token) -> None:
    _bound.reset(token)


@contextmanager
def bound(**fields) -> Iterator[None]:
    """`bind` for the length of a with block."""
    token = bind(**fields)
    try:
        yield
    finally:
        unbind(token)


def _value(raw: str):
    for parse in (int, float):
        try:
            return parse(raw)
        except ValueError:
            pass
    return raw


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        entry = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "process": record.processName,
            **_bound.get(),
        }
        # The message's own pairs win over bound ones: a line about a rider of a GPU batch
        # names that job, not the one whose message woke the worker. `key=None` names nothing.
        entry.update((key, _value(raw)) for key, raw in _PAIR.findall(message) if raw != "None")
        entry["message"] = message
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def formatter(log_format: str) -> logging.Formatter:
    return JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT)


def configure(log_format: str, level: int = logging.INFO) -> None:
    """Root logging for a process that sets up its own (the API); Celery workers set theirs up
    and take only the formatter (worker/app.py)."""
    handler = logging.StreamHandler()
    handler.setFormatter(formatter(log_format))
    logging.basicConfig(level=level, handlers=[handler], force=True)
    logging.captureWarnings(True)  # warnings become log lines too, not bare stderr text
