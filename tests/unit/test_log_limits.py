"""The ingest's log filters: bounded aiokafka noise, one short line per bad request."""

import logging

from aiohttp.http_exceptions import ContentEncodingError, LineTooLong
from aiohttp.web_protocol import RequestPayloadError

from workers.log_limits import (
    BadRequestLines,
    RateLimit,
    install,
    limit_own_loggers,
    uninstall,
)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def record(name: str, msg: str, *args: object, exc: BaseException | None = None
           ) -> logging.LogRecord:
    info = (type(exc), exc, None) if exc is not None else None
    return logging.LogRecord(name, logging.ERROR, __file__, 1, msg, args, info)


def test_one_line_per_kind_per_window_then_the_count() -> None:
    clock = Clock()
    limit = RateLimit(every_s=10.0, clock=clock)
    connect = "Unable connect to node with id %s: %s"
    assert limit.filter(record("aiokafka", connect, 1, "refused"))
    passed = [limit.filter(record("aiokafka", connect, 1, "refused")) for _ in range(500)]
    assert not any(passed)
    # another kind has its own window
    assert limit.filter(record("aiokafka", "Unable to update metadata from %s", [1]))
    assert limit.filter(record("aiokafka.conn", connect, 1, "refused"))
    clock.now = 10.5
    again = record("aiokafka", connect, 1, "refused")
    assert limit.filter(again)
    assert again.getMessage() == ("Unable connect to node with id 1: refused "
                                  "(500 more like this in the last 10s)")


def test_the_counted_line_formats_through_fausts_formatter() -> None:
    """mode's formatter (the worker's) turns args None into (None,); "... %s" % (None,)
    then raised inside logging, which printed "--- Logging error ---" and a stack."""
    from mode.utils.logging import ExtensionFormatter

    clock = Clock()
    limit = RateLimit(every_s=10.0, clock=clock)
    fetch = "Failed fetch messages from %s: %s"
    assert limit.filter(record("aiokafka.consumer.fetcher", fetch, 1, "NodeNotReadyError"))
    assert not limit.filter(record("aiokafka.consumer.fetcher", fetch, 1, "NodeNotReadyError"))
    clock.now = 11.0
    counted = record("aiokafka.consumer.fetcher", fetch, 1, "NodeNotReadyError: 100% gone")
    assert limit.filter(counted)
    line = ExtensionFormatter(fmt="%(message)s").format(counted)
    assert line == ("Failed fetch messages from 1: NodeNotReadyError: 100% gone "
                    "(1 more like this in the last 11s)")


def test_skipped_record_lines_are_limited_on_their_own_logger() -> None:
    """Before any handler exists: Faust's table recovery logs before `install` can run."""
    logger = logging.getLogger("workers.keys.table")
    seen: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record.getMessage())

    handler = Keep()
    logger.addHandler(handler)
    try:
        limit_own_loggers()
        limit_own_loggers()  # idempotent
        for n in range(300):
            logger.warning("key table: skipped a record: %s", f"key/g{n}")
    finally:
        logger.removeHandler(handler)
        for f in list(logger.filters):
            logger.removeFilter(f)
    assert seen == ["key table: skipped a record: key/g0"]


def test_other_loggers_pass_untouched() -> None:
    limit = RateLimit(clock=Clock())
    for _ in range(3):
        assert limit.filter(record("workers.ingest.kafka_sink", "write failed"))
        assert limit.filter(record("aiokafkaish", "not aiokafka"))


def test_bad_request_traceback_becomes_one_short_line() -> None:
    shorten = BadRequestLines()
    rec = record("aiohttp.server", "Error handling request from %s", "192.0.2.1",
                 exc=LineTooLong("X-Auth-Token: secret-in-a-long-line" + "a" * 9000, "8190"))
    assert shorten.filter(rec)
    assert rec.exc_info is None and rec.levelno == logging.INFO
    message = rec.getMessage()
    assert message == "bad request (LineTooLong) from 192.0.2.1"
    assert "secret" not in message


def test_payload_error_is_named_by_its_cause() -> None:
    try:
        try:
            raise ContentEncodingError("Can not decode content-encoding: gzip")
        except ContentEncodingError as cause:
            raise RequestPayloadError("Response payload is not completed") from cause
    except RequestPayloadError as exc:
        rec = record("aiohttp.server", "Unhandled exception", exc=exc)
    assert BadRequestLines().filter(rec)
    assert rec.getMessage().startswith("bad request (ContentEncodingError) from ?")


def test_real_server_errors_keep_their_traceback() -> None:
    rec = record("aiohttp.server", "Error handling request", exc=KeyError("bug"))
    assert BadRequestLines().filter(rec)
    assert rec.exc_info is not None and rec.levelno == logging.ERROR


def test_install_filters_every_root_handler_once() -> None:
    root = logging.Logger("test-root")
    handler = logging.StreamHandler()
    root.addHandler(handler)
    install(root)
    install(root)
    try:
        assert sum(isinstance(f, RateLimit) for f in handler.filters) == 1
        assert any(isinstance(f, BadRequestLines)
                   for f in logging.getLogger("aiohttp.server").filters)
    finally:
        uninstall(root)
    assert not handler.filters


def test_handlers_sharing_the_filter_agree() -> None:
    limit = RateLimit(clock=Clock())
    first = record("aiokafka", "Unable to update metadata from %s", [1])
    assert limit.filter(first) and limit.filter(first)  # the second handler sees the same
    second = record("aiokafka", "Unable to update metadata from %s", [1])
    assert not limit.filter(second) and not limit.filter(second)
