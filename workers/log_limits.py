"""Keep the ingest's log readable when Kafka is down or clients send garbage.

Two logging filters, installed by the ingest and the worker (`install`):

- `RateLimit` lets through one line per message kind (logger and message
  template) every `every_s` seconds and counts the rest; the next line of that
  kind that passes says how many were left out. aiokafka logs every failed
  connection and metadata attempt, many per second per client while the broker
  is away; the worker logs each garbage record it skips on its side topics.
- `BadRequestLines` turns aiohttp's traceback for a request it could not parse
  (a header line too long, a broken Content-Length, a body that is not what its
  Content-Encoding says) into one short line: it is the client's mistake, and
  the client already got a 400.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator

from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestPayloadError

# The worker's and the usage process's own lines about records they skip on the topics
# anyone can write to (one line per record: a flood of garbage would flood the log), and
# the clients' noise.
SKIPPED_RECORDS = ("workers.kafka.unreadable", "workers.kafka.lenient_tables", "workers.keys.table",
                   "workers.keys.store", "workers.agents.nonce_log", "workers.usage_agents.counts")
RATE_LIMITED = ("aiokafka", "aiohttp.server", *SKIPPED_RECORDS)
EVERY_S = 10.0
MAX_KINDS = 1000  # message kinds remembered; templates are few, so this is only a guard


class RateLimit(logging.Filter):
    """At most one record per (logger, message template) per `every_s`, for loggers
    under `prefixes`; others pass untouched."""

    def __init__(self, prefixes: tuple[str, ...] = RATE_LIMITED, every_s: float = EVERY_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.prefixes = prefixes
        self.every_s = every_s
        self.clock = clock
        self._seen: dict[tuple[str, str], tuple[float, int]] = {}

    def _limited(self, name: str) -> bool:
        return any(name == p or name.startswith(p + ".") for p in self.prefixes)

    def filter(self, record: logging.LogRecord) -> bool:
        # One verdict per record, however many handlers share this filter.
        verdict = getattr(record, "_rate_limit_verdict", None)
        if verdict is None:
            verdict = self._decide(record)
            record._rate_limit_verdict = verdict
        return bool(verdict)

    def _decide(self, record: logging.LogRecord) -> bool:
        if not self._limited(record.name):
            return True
        key = (record.name, str(record.msg))
        now = self.clock()
        last = self._seen.get(key)
        if last is not None and now - last[0] < self.every_s:
            self._seen[key] = (last[0], last[1] + 1)
            return False
        if len(self._seen) >= MAX_KINDS and key not in self._seen:
            self._seen.clear()
        self._seen[key] = (now, 0)
        if last is not None and last[1]:
            record.msg = (f"{record.getMessage()} ({last[1]} more like this in the last "
                          f"{now - last[0]:.0f}s)")
            record.args = ()  # not None: mode's formatter would make it (None,)
        return True


class BadRequestLines(logging.Filter):
    """On `aiohttp.server`: a request aiohttp could not parse is logged as one line,
    without the traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        problem = _client_error(exc)
        if problem is None:
            return True
        remote = record.args[0] if isinstance(record.args, tuple) and record.args else "?"
        # Only the error's name: its message quotes the client's bytes (a request
        # line with ?token=..., a header line), which must not reach a log.
        record.msg = f"bad request ({type(problem).__name__}) from %s"
        record.args = (remote,)
        record.exc_info = None
        record.exc_text = None
        record.levelno, record.levelname = logging.INFO, "INFO"
        return True


def _client_error(exc: BaseException | None) -> BaseException | None:
    """The HTTP parsing error behind `exc`, if the client's request caused it."""
    seen = 0
    while exc is not None and seen < 5:
        if isinstance(exc, HttpProcessingError):
            return exc
        if isinstance(exc, RequestPayloadError):
            return _client_error(exc.__cause__) or exc
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return None


def install(root: logging.Logger | None = None) -> None:
    """Rate-limit aiokafka and aiohttp.server on every handler of the root logger
    (handlers see records of every logger, filters on a parent logger do not),
    and shorten bad-request tracebacks."""
    root = root or logging.getLogger()
    limit = RateLimit()
    handlers = root.handlers or ([logging.lastResort] if logging.lastResort else [])
    for handler in handlers:
        if not any(isinstance(f, RateLimit) for f in handler.filters):
            handler.addFilter(limit)
    server = logging.getLogger("aiohttp.server")
    if not any(isinstance(f, BadRequestLines) for f in server.filters):
        server.addFilter(BadRequestLines())


def limit_own_loggers(names: tuple[str, ...] = SKIPPED_RECORDS) -> None:
    """Rate-limit the worker's skipped-record lines from the start: a filter on the logger
    a record is logged on applies before any handler, so it holds while Faust recovers a
    table (before `install` can run: Faust replaces the root's handlers when it starts)."""
    for name in names:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RateLimit) for f in logger.filters):
            logger.addFilter(RateLimit(names))


@contextlib.contextmanager
def silenced(name: str = "aiokafka", quiet: bool = True) -> Iterator[None]:
    """`name`'s lines below CRITICAL left out while inside (with `quiet`), for code that
    says the problem itself in one line; the level is restored after."""
    logger = logging.getLogger(name)
    level = logger.level
    if quiet:
        logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


def uninstall(root: logging.Logger | None = None) -> None:
    """Undo `install` (for tests)."""
    root = root or logging.getLogger()
    for handler in [*root.handlers, logging.lastResort]:
        if handler is not None:
            for limit in [f for f in handler.filters if isinstance(f, RateLimit)]:
                handler.removeFilter(limit)
    server = logging.getLogger("aiohttp.server")
    for short in [f for f in server.filters if isinstance(f, BadRequestLines)]:
        server.removeFilter(short)
