"""How eventguard's long-running processes write their log lines: human-readable text
(the default) or one JSON object per line, for a log shipper.

The choice is `--log-format` on the command line, else $EVENTGUARD_LOG_FORMAT. The
command line puts it into the environment, so that the Faust app (built when
workers.app is imported) and every process a command starts choose the same.

A JSON line has `ts` (UTC, RFC 3339, milliseconds), `level`, `logger`, `message`,
`pid`, `request_id` when the line is about one request, and `exc` (the traceback)
for an exception. A line names a request with `extra={"request_id": ...}`, or by
being logged while `current_request_id` is set.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import os
import sys
import time
from collections.abc import Coroutine
from contextvars import ContextVar
from types import TracebackType
from typing import Any, TypeVar

import orjson

from workers.settings import LOG_FORMAT_ENV, ConfigError

T = TypeVar("T")
TEXT, JSON = "text", "json"
FORMATS = (TEXT, JSON)
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

# The request being handled: set around one request's work and reset after it, so
# only what that work logs names it (tasks started meanwhile keep a copy).
current_request_id: ContextVar[str | None] = ContextVar("eventguard_request_id", default=None)


def chosen(flag: str | None = None) -> str:
    """The format: FLAG, else $EVENTGUARD_LOG_FORMAT, else text."""
    value = (flag or os.environ.get(LOG_FORMAT_ENV) or TEXT).strip().lower()
    if value not in FORMATS:
        raise ConfigError(f"{LOG_FORMAT_ENV} is {value!r}; use one of {', '.join(FORMATS)}")
    return value


def detached(coro: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
    """A task for work that outlives the request that starts it (a Kafka producer and
    its background tasks): a task copies its creator's context, so without this every
    line it ever logs would name that one request."""
    return asyncio.get_running_loop().create_task(coro, context=contextvars.Context())


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line (newlines in a message or a traceback
    are escaped by JSON)."""

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "ts": _rfc3339(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "pid": record.process,
        }
        request_id = getattr(record, "request_id", None) or current_request_id.get()
        if request_id:
            doc["request_id"] = str(request_id)
        if record.exc_info:
            # Cached like logging.Formatter does, for the other handlers of the record.
            record.exc_text = record.exc_text or self.formatException(record.exc_info)
        if record.exc_text:
            doc["exc"] = record.exc_text
        if record.stack_info:
            doc["stack"] = self.formatStack(record.stack_info)
        return orjson.dumps(doc, default=str).decode()


def _rfc3339(created: float) -> str:
    whole = int(created)
    millis = int((created - whole) * 1000)
    return f"{time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime(whole))}.{millis:03d}Z"


def formatter(fmt: str) -> logging.Formatter:
    return JsonFormatter() if fmt == JSON else logging.Formatter(TEXT_FORMAT)


def configure(fmt: str, level: int = logging.INFO) -> None:
    """The root logger writes FMT lines to stderr: for the ingest and the tools (the
    Faust worker sets up its own logging from `faust_logging_config`)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter(fmt))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    if fmt == JSON:
        everything_through_logging()


def faust_logging_config(fmt: str) -> dict[str, Any] | None:
    """Faust's `logging_config` app setting for FMT; None keeps Faust's coloured text.

    `merge` keeps Faust's own root level (its `-l` option) and replaces only its
    handler. The handler binds the real stderr when Faust configures logging, before
    Faust redirects sys.stdout and sys.stderr into the log."""
    if fmt != JSON:
        return None
    return {
        "merge": True,
        "formatters": {"json": {"()": f"{__name__}.JsonFormatter"}},
        "handlers": {"default": {"class": "logging.StreamHandler", "formatter": "json",
                                 "stream": "ext://sys.stderr"}},
    }


def everything_through_logging() -> None:
    """Warnings and an uncaught exception would print plain text to stderr; a JSON log
    reader takes every line, so they go through logging too."""
    logging.captureWarnings(True)
    sys.excepthook = _log_uncaught


def _log_uncaught(kind: type[BaseException], exc: BaseException,
                  tb: TracebackType | None) -> None:
    if issubclass(kind, KeyboardInterrupt):
        sys.__excepthook__(kind, exc, tb)
        return
    logging.getLogger("eventguard").critical("uncaught exception", exc_info=(kind, exc, tb))
