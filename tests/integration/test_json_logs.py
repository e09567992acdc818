"""`--log-format json` on real processes: a worker and an ingest on the broker, and an
ingest without Kafka. Every line either writes, stdout and stderr, is one JSON object
with the fields, Faust's and aiokafka's lines included, and no secret is in any."""

from __future__ import annotations

import asyncio
import re
import secrets
import sys
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from tests.integration.conftest import PREFIX, write_config
from workers import topics
from workers.cli.decisions import Collector
from workers.devstack.processes import Proc, Stack, free_port, wait_http

FIELDS = ("ts", "level", "logger", "message")
TS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def json_lines(proc: Proc) -> list[dict[str, Any]]:
    """The process's whole output (stdout and stderr), each line parsed as JSON."""
    docs = []
    for n, line in enumerate(proc.log.read_text().splitlines(), 1):
        try:
            doc = orjson.loads(line)
        except orjson.JSONDecodeError:
            raise AssertionError(f"{proc.log}:{n} is not JSON: {line[:300]!r}") from None
        assert isinstance(doc, dict), f"{proc.log}:{n}: {line[:300]!r}"
        missing = [f for f in FIELDS if f not in doc]
        assert not missing, f"{proc.log}:{n} lacks {missing}: {line[:300]!r}"
        assert TS.match(doc["ts"]), doc
        docs.append(doc)
    return docs


def eventguard(stack: Stack, name: str, *args: str, env: dict[str, str] | None = None
               ) -> Proc:
    return stack.process(name, [sys.executable, "-m", "workers.cli", *args], env)


async def post(url: str, body: bytes = b'{"event_type":"page"}') -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession() as s, s.post(url, data=body) as r:
        return r.status, await r.json()


def test_a_worker_and_an_ingest_log_only_json_lines(bootstrap: str, tmp_path: Path) -> None:
    prefix = f"{PREFIX}json{secrets.token_hex(2)}."  # a group and topics of its own
    asyncio.run(topics.apply(bootstrap, topics.load_specs(), prefix))
    secret = f"it-json-{secrets.token_hex(8)}"
    config = write_config(tmp_path / "eventguard.yaml", [{"id": "logs", "server_secret": secret}])
    stack = Stack(tmp_path / "logs", bootstrap, prefix)
    port = free_port()
    try:
        # A port of its own: the default (6066) may be taken by a worker already running.
        worker = eventguard(stack, "worker", "worker", "--config", str(config),
                            "--web-port", str(free_port()), "--log-format", "json", "-l", "info")
        ingest = eventguard(stack, "ingest", "ingest", "--config", str(config),
                            "--port", str(port), "--log-format", "json")
        wait_http(f"http://127.0.0.1:{port}/health", ingest)
        url = f"http://127.0.0.1:{port}/api/v1/s2s/event?token={secret}"

        async def decided() -> None:
            async with Collector(bootstrap, prefix=prefix) as col:
                for _ in range(60):
                    assert worker.alive(), worker.tail()
                    _, body = await post(url)
                    try:
                        got = await col.decision(body["request_id"], timeout_s=3)
                    except TimeoutError:
                        continue
                    if got["audit-log"][0]["reason"] == "ok":
                        return
                    await asyncio.sleep(1)
                raise AssertionError(f"no accepted decision; see {worker.log}")
        asyncio.run(decided())
    finally:
        stack.stop()  # SIGTERM: the shutdown lines count too

    worker_lines, ingest_lines = json_lines(worker), json_lines(ingest)
    loggers = {d["logger"] for d in worker_lines}
    assert any(n.startswith("faust.") for n in loggers), loggers
    assert any(n.startswith("aiokafka") for n in loggers), loggers
    assert any(n.startswith("workers.") for n in loggers), loggers
    assert any(d["message"].startswith("key table:") for d in worker_lines)
    assert "workers.ingest.main" in {d["logger"] for d in ingest_lines}
    for docs in (worker_lines, ingest_lines):
        assert {d["level"] for d in docs} <= {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}
        assert secret not in orjson.dumps(docs).decode()


def test_an_ingest_without_kafka_names_the_request_in_its_json_line(tmp_path: Path) -> None:
    secret = f"it-json-{secrets.token_hex(8)}"
    config = write_config(tmp_path / "eventguard.yaml", [{"id": "logs", "server_secret": secret}])
    stack = Stack(tmp_path / "logs", f"127.0.0.1:{free_port()}")  # nothing listens there
    port = free_port()
    try:
        ingest = eventguard(stack, "ingest", "ingest", "--config", str(config),
                            "--port", str(port), "--log-format", "json")

        async def refused() -> int:
            for _ in range(100):
                try:
                    status, _ = await post(f"http://127.0.0.1:{port}/api/v1/s2s/event"
                                           f"?token={secret}")
                    return status
                except aiohttp.ClientConnectionError:
                    assert ingest.alive(), ingest.tail()
                    await asyncio.sleep(0.2)
            raise AssertionError(f"ingest never answered:\n{ingest.tail()}")
        assert asyncio.run(refused()) == 503
    finally:
        stack.stop()
    docs = json_lines(ingest)
    [first] = [d for d in docs if "answering 503" in d["message"]]
    assert first["level"] == "WARNING" and first["logger"] == "workers.ingest.kafka_sink"
    assert re.fullmatch(r"[0-9a-f]{32}", first["request_id"])
    # aiokafka's lines come from the producer's own tasks: they name no request.
    kafka = [d for d in docs if d["logger"].startswith("aiokafka")]
    assert kafka and not any("request_id" in d for d in kafka)
    assert secret not in orjson.dumps(docs).decode()


def test_the_environment_variable_chooses_json_too(tmp_path: Path) -> None:
    """EVENTGUARD_LOG_FORMAT alone, on an ingest that cannot start (its config is bad)."""
    bad = tmp_path / "eventguard.yaml"
    bad.write_text("ingest: {max_body_bytes: -1}\n")
    stack = Stack(tmp_path / "logs", f"127.0.0.1:{free_port()}")
    proc = eventguard(stack, "ingest", "ingest", "--config", str(bad), "--port",
                      str(free_port()), env={"EVENTGUARD_LOG_FORMAT": "json"})
    try:
        assert proc.popen.wait(60) == 2
    finally:
        stack.stop()
    [doc] = json_lines(proc)
    assert doc["level"] == "ERROR" and "max_body_bytes must be positive" in doc["message"]
