"""A fault in the worker's send path ends the process instead of leaving it alive
with dead partitions (issue 8), and the event it could not write is decided
again by the next worker: nothing is lost."""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import replace
from pathlib import Path

from aiokafka import AIOKafkaProducer

from tests.integration.conftest import PREFIX, write_config
from workers import topics
from workers.cli.decisions import Collector
from workers.devstack.processes import Stack
from workers.paths import cache_dir

EXIT_CODE = 70  # workers.agents.outbox.EXIT_CODE; importing it here would build the Faust app
SECRET = f"wf-{secrets.token_hex(8)}"
HEADERS = [("eg-endpoint", b"s2s"), ("eg-token", SECRET.encode())]


def specs(accepted_limit: str) -> list[topics.TopicSpec]:
    return [replace(s, config={**s.config, "max.message.bytes": accepted_limit})
            if s.name == "accepted-events" else s for s in topics.load_specs()]


async def produce(bootstrap: str, topic: str, rid: str, body: bytes) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(topic, body, key=rid.encode(),
                                     headers=[("eg-request-id", rid.encode()), *HEADERS])
    finally:
        await producer.stop()


def test_an_undeliverable_output_exits_the_worker_and_is_decided_again(
        bootstrap: str, tmp_path: Path) -> None:
    prefix = f"{PREFIX.rstrip('.')}-wf{secrets.token_hex(3)}."
    # An operator lowered accepted-events' max.message.bytes below our records:
    # the broker refuses them at delivery, after the agent moved on.
    asyncio.run(topics.apply(bootstrap, specs("1024"), prefix))
    config = write_config(tmp_path / "eventguard.yaml", [{"id": "wf", "server_secret": SECRET}])
    stack = Stack(cache_dir() / "test-logs" / prefix.rstrip("."), bootstrap, prefix)
    big = b'{"event_type":"page","pad":"' + b"x" * 4000 + b'"}'

    async def scenario() -> None:
        async with Collector(bootstrap, prefix=prefix) as col:
            worker = stack.worker(config, name="worker-1")
            # A rejected decision is small and goes to rejected-events: proof the
            # worker decides before the fault is injected.
            await produce(bootstrap, prefix + "raw-events", "probe", b"{}{")
            assert await col.wait(lambda: col.decided("probe"), 90), worker.tail()
            await produce(bootstrap, prefix + "raw-events", "too-big", big)
            code = await asyncio.to_thread(worker.popen.wait, 60)
            assert code == EXIT_CODE, worker.tail()
            assert "Exiting with code 70" in worker.log.read_text()
            assert not col.by_id.get("too-big", {}).get("accepted-events")

            await topics.apply(bootstrap, specs("2097152"), prefix)
            second = stack.worker(config, name="worker-2")
            assert await col.wait(lambda: col.decided("too-big"), 90), second.tail()
            [audit] = col.by_id["too-big"]["audit-log"][-1:]
            assert audit["reason"] == "ok"
            assert second.alive()

    try:
        asyncio.run(scenario())
    finally:
        stack.stop()
