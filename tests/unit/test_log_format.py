"""JSON log lines: the fields, the request id, exceptions, Faust's logging set-up, and the
command line's choice of format (real worker and ingest processes: tests/integration)."""

from __future__ import annotations

import asyncio
import io
import logging
import re
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from aiokafka.errors import KafkaConnectionError
from mode.utils.logging import setup_logging

from workers import log_format, log_limits
from workers.cli import main
from workers.ingest.kafka_sink import KafkaSink
from workers.ingest.server import create_app
from workers.log_format import JsonFormatter, current_request_id
from workers.settings import LOG_FORMAT_ENV, ConfigError, Settings

TS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


@pytest.fixture(autouse=True)
def restore_logging(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """configure() replaces the root handlers and the excepthook; put them back."""
    monkeypatch.setenv(LOG_FORMAT_ENV, "")  # restored after the test, also if main() sets it
    root = logging.getLogger()
    handlers, level, hook = list(root.handlers), root.level, sys.excepthook
    yield
    log_limits.uninstall()
    for h in list(root.handlers):
        root.removeHandler(h)
    for h in handlers:
        root.addHandler(h)
    root.setLevel(level)
    sys.excepthook = hook
    logging.captureWarnings(False)


def lines(text: str) -> list[dict[str, Any]]:
    """Every line as JSON: a line that is not JSON fails the test."""
    return [orjson.loads(line) for line in text.splitlines()]


def emit(logger: str, msg: str, *args: object, **kw: Any) -> dict[str, Any]:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter())
    log = logging.getLogger(logger)
    log.addHandler(handler)
    log.propagate = False
    try:
        log.warning(msg, *args, **kw)
    finally:
        log.removeHandler(handler)
        log.propagate = True
    [doc] = lines(out.getvalue())
    return doc


def test_a_json_line_has_the_fields() -> None:
    doc = emit("eventguard.test", "key table: %d keys loaded", 3)
    assert doc["level"] == "WARNING" and doc["logger"] == "eventguard.test"
    assert doc["message"] == "key table: 3 keys loaded"
    assert TS.match(doc["ts"]) and isinstance(doc["pid"], int)
    assert "request_id" not in doc and "exc" not in doc


def test_a_message_with_newlines_stays_one_line() -> None:
    doc = emit("eventguard.test", "first\nsecond \"quoted\"")
    assert doc["message"] == "first\nsecond \"quoted\""


def test_the_request_id_comes_from_extra_or_the_context() -> None:
    assert emit("x", "decision failed", extra={"request_id": "r-1"})["request_id"] == "r-1"
    token = current_request_id.set("r-2")
    try:
        assert emit("x", "write failed")["request_id"] == "r-2"
        assert emit("x", "m", extra={"request_id": "r-3"})["request_id"] == "r-3"
    finally:
        current_request_id.reset(token)
    assert "request_id" not in emit("x", "after the request")


def test_an_exception_is_in_exc() -> None:
    try:
        raise ValueError("bad thing")
    except ValueError:
        out = io.StringIO()
        handler = logging.StreamHandler(out)
        handler.setFormatter(JsonFormatter())
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", None,
                                   sys.exc_info())
        handler.handle(record)
    [doc] = lines(out.getvalue())
    assert doc["message"] == "failed"
    assert doc["exc"].startswith("Traceback") and "ValueError: bad thing" in doc["exc"]


def test_the_format_flag_then_the_environment_then_text(monkeypatch: pytest.MonkeyPatch
                                                        ) -> None:
    assert log_format.chosen() == "text"
    monkeypatch.setenv(LOG_FORMAT_ENV, "JSON")
    assert log_format.chosen() == "json"
    assert log_format.chosen("text") == "text"
    monkeypatch.setenv(LOG_FORMAT_ENV, "xml")
    with pytest.raises(ConfigError, match="EVENTGUARD_LOG_FORMAT is 'xml'; use one of text"):
        log_format.chosen()


def test_configure_json_sends_every_logger_warning_and_crash_through_json(
        capsys: pytest.CaptureFixture[str]) -> None:
    log_format.configure("json")
    logging.getLogger("aiokafka.conn").warning("Unable connect to node with id %s", 1)
    warnings.warn("deprecated thing", DeprecationWarning, stacklevel=1)
    try:
        raise RuntimeError("boom")
    except RuntimeError as exc:
        sys.excepthook(RuntimeError, exc, exc.__traceback__)
    docs = lines(capsys.readouterr().err)
    assert [d["logger"] for d in docs] == ["aiokafka.conn", "py.warnings", "eventguard"]
    assert "deprecated thing" in docs[1]["message"]
    assert "RuntimeError: boom" in docs[2]["exc"]


def test_configure_text_keeps_the_readable_lines(capsys: pytest.CaptureFixture[str]) -> None:
    log_format.configure("text")
    logging.getLogger("workers.ingest.main").info("ingest: http://127.0.0.1:8001")
    err = capsys.readouterr().err
    assert err.endswith(" INFO workers.ingest.main: ingest: http://127.0.0.1:8001\n")
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(err)


def test_the_rate_limit_still_folds_repeated_lines(capsys: pytest.CaptureFixture[str]) -> None:
    log_format.configure("json")
    log_limits.install()
    for _ in range(50):
        logging.getLogger("aiokafka").warning("Unable to update metadata from %s", [1])
    assert len(lines(capsys.readouterr().err)) == 1


def test_faust_logging_config_makes_faust_and_aiokafka_lines_json(
        capsys: pytest.CaptureFixture[str]) -> None:
    """The app setting as Faust's worker applies it (mode's setup_logging, with Faust's
    `-l info`), then Faust redirects stdout into the log, as its worker does."""
    config = log_format.faust_logging_config("json")
    assert config is not None and log_format.faust_logging_config("text") is None
    setup_logging(loglevel="info", logging_config=dict(config))
    logging.getLogger("faust.worker").info("[^Worker]: Ready")
    logging.getLogger("aiokafka.consumer.group_coordinator").info("Joined group")
    logging.getLogger("aiokafka").debug("below -l info: not written")
    docs = lines(capsys.readouterr().err)
    assert [(d["logger"], d["message"]) for d in docs] == [
        ("faust.worker", "[^Worker]: Ready"),
        ("aiokafka.consumer.group_coordinator", "Joined group")]


# The ingest: a line logged while a request is stored names it; the producer's own
# background tasks, started by that request, never do.

class FakeProducer:
    def __init__(self) -> None:
        self.background: asyncio.Task[None] | None = None

    async def start(self) -> None:
        async def sender() -> None:
            await asyncio.sleep(0.01)
            logging.getLogger("aiokafka.producer.sender").warning("sender: still waiting")
        self.background = asyncio.create_task(sender())

    # What the ingest's batcher uses: one partition, led by broker 0, whose send fails.
    @property
    def client(self) -> Any:
        cluster = SimpleNamespace(partitions_for_topic=lambda topic: {0},
                                  leader_for_partition=lambda tp: 0)

        async def fetch_all_metadata() -> Any:  # the sink's check: the topic is there
            return cluster
        return SimpleNamespace(cluster=cluster, fetch_all_metadata=fetch_all_metadata)

    def create_batch(self) -> Any:
        return SimpleNamespace(append=lambda **record: object())

    async def send_batch(self, *args: Any, **kwargs: Any) -> None:
        raise KafkaConnectionError("down")


class FailingSink(KafkaSink):
    def __init__(self) -> None:
        super().__init__("127.0.0.1:1", "raw-events", 1024, send_timeout_s=0.5)
        self.producer = FakeProducer()

    def _producer_for(self) -> Any:
        return self.producer


def test_the_ingest_names_the_request_and_not_the_producers_tasks(
        capsys: pytest.CaptureFixture[str]) -> None:
    log_format.configure("json")
    sink = FailingSink()

    async def go() -> None:
        app = create_app(sink, Settings(max_body_bytes=1024))
        client: TestClient[web.Request, web.Application]
        async with TestClient(TestServer(app)) as client:
            r = await client.post("/api/v1/s2s/event?token=s3cret-token", data=b"{}")
            assert r.status == 503
            assert sink.producer.background is not None
            await sink.producer.background
    asyncio.run(go())
    docs = {d["logger"]: d for d in lines(capsys.readouterr().err)}
    docs.pop("aiohttp.access", None)  # the test server's; the ingest runs without one
    failed = docs["workers.ingest.kafka_sink"]
    assert "answering 503" in failed["message"]
    assert re.fullmatch(r"[0-9a-f]{32}", failed["request_id"])
    assert "request_id" not in docs["aiokafka.producer.sender"]
    assert "s3cret-token" not in str(docs)


# The command line.

def test_the_long_running_commands_take_log_format() -> None:
    parser = main.build_parser()
    for argv in (["worker"], ["ingest"], ["run"], ["tail", "audit-log"]):
        assert parser.parse_known_args([*argv, "--log-format", "json"])[0].log_format == "json"
        assert parser.parse_known_args(argv)[0].log_format is None
    with pytest.raises(SystemExit):
        parser.parse_args(["ingest", "--log-format", "xml"])


def test_a_json_ingest_that_cannot_start_says_why_in_json(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "eventguard.yaml"
    bad.write_text("kafka: [not, a, mapping]\n")
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:1")
    monkeypatch.setenv("EVENTGUARD_CONFIG", "")
    assert main.main(["ingest", "--config", str(bad), "--log-format", "json"]) == 2
    [doc] = lines(capsys.readouterr().err)
    assert doc["level"] == "ERROR" and "`kafka` must be a mapping" in doc["message"]


def test_a_json_worker_without_a_broker_says_so_in_json(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "eventguard.yaml"
    config.write_text("api_keys: []\n")
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "")
    monkeypatch.setattr(main, "_name_the_embedded_broker", lambda: None)
    assert main.main(["worker", "--config", str(config), "--log-format", "json"]) == 2
    [doc] = lines(capsys.readouterr().err)
    assert doc["level"] == "ERROR" and "KAFKA_BOOTSTRAP_SERVERS" in doc["message"]
