"""The real thing: the embedded Kafka broker, a worker process and an ingest process.

The broker is started once per run (reused if already up, and left running if
it was). Set KAFKA_BOOTSTRAP_SERVERS to run against another cluster. Each run
uses its own topic prefix, so it never sees another run's records or group.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import orjson
import pytest
import yaml
from aiokafka import AIOKafkaProducer

from workers import topics
from workers.cli.decisions import OUTPUT_TOPICS, Collector
from workers.devstack import broker
from workers.devstack.processes import Proc, Stack, free_port
from workers.paths import cache_dir

PREFIX = f"it{secrets.token_hex(3)}."
SHOP_ORIGIN = "https://www.shop.test"


@dataclass
class Env:
    bootstrap: str
    prefix: str
    url: str
    config: Path
    logs: Path
    stack: Stack
    secrets: dict[str, str] = field(default_factory=dict)
    # Written in plain text straight to raw-events by a test, as a kcat user might;
    # kept out of `secrets`, which must never appear in any topic.
    direct_secret: str = ""

    def collector(self, topics: tuple[str, ...] = OUTPUT_TOPICS, from_beginning: bool = False
                  ) -> Collector:
        return Collector(self.bootstrap, topics, from_beginning, prefix=self.prefix)

    def stack_logs(self) -> bytes:
        return b"".join(p.read_bytes() for p in self.logs.glob("*.log"))

    def post(self, path: str, body: bytes, headers: dict[str, str] | None = None
             ) -> tuple[int, dict[str, object]]:
        async def go() -> tuple[int, dict[str, object]]:
            async with aiohttp.ClientSession() as s, s.post(
                self.url + path, data=body, headers=headers or {}
            ) as r:
                return r.status, await r.json()
        return asyncio.run(go())


@pytest.fixture(scope="session")
def bootstrap() -> Iterator[str]:
    external = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    started = False
    if external:
        address = external
    else:
        started = broker.status() is None
        address = broker.start().bootstrap
    asyncio.run(topics.apply(address, topics.load_specs(), PREFIX))
    yield address
    if not external:
        # This run's topics: PREFIX, and the prefixes tests derive from it.
        asyncio.run(topics.delete_prefixed(address, PREFIX.rstrip(".")))
    if started:
        broker.stop()


async def publish_config(bootstrap: str, prefix: str, key: str,
                         value: dict[str, object] | None) -> None:
    """Write one auth-config record (a tombstone for None), as any producer may."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(prefix + "auth-config",
                                     orjson.dumps(value) if value is not None else None,
                                     key=key.encode())
    finally:
        await producer.stop()


def write_config(path: Path, keys: list[dict[str, object]], **extra: object) -> Path:
    path.write_text(yaml.safe_dump({"api_keys": keys, "server": {"api_keys_reload_sec": 1},
                                    **extra}))
    return path


@pytest.fixture(scope="session")
def env(bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    tmp = tmp_path_factory.mktemp("stack")
    logs = cache_dir() / "test-logs" / PREFIX.rstrip(".")
    sec = {name: f"it-{name}-{secrets.token_hex(8)}" for name in ("web", "backend", "both_c",
                                                                 "both_s")}
    direct = f"it-direct-{secrets.token_hex(8)}"
    config = write_config(tmp / "eventguard.yaml", [
        {"id": "direct", "server_secret": direct},
        {"id": "web", "client_secret": sec["web"], "origins": ["*.shop.test", "shop.test"]},
        {"id": "backend", "server_secret": sec["backend"]},
        {"id": "both", "client_secret": sec["both_c"], "server_secret": sec["both_s"]},
    ])
    stack = Stack(logs, bootstrap, PREFIX)
    port = free_port()
    try:
        worker = stack.worker(config)
        stack.ingest(config, port)
        e = Env(bootstrap, PREFIX, f"http://127.0.0.1:{port}", config, logs, stack, sec, direct)
        _wait_until_deciding(e, worker)
        yield e
    finally:
        stack.stop()


def _wait_until_deciding(e: Env, worker: Proc) -> None:
    """Probe through the real path until the worker accepts with the test key."""
    async def go() -> None:
        async with e.collector() as col:
            for _ in range(90):
                if not worker.alive():
                    raise RuntimeError(f"worker exited:\n{worker.tail()}")
                async with aiohttp.ClientSession() as s, s.post(
                    f"{e.url}/api/v1/s2s/event?token={e.secrets['backend']}",
                    data=b'{"event_type":"probe"}',
                ) as r:
                    rid = (await r.json())["request_id"]
                try:
                    got = await col.decision(rid, timeout_s=2)
                except TimeoutError:
                    continue
                if got.get("accepted-events"):
                    return
                await asyncio.sleep(0.5)
            raise RuntimeError(f"worker never accepted the test key; see {worker.log}")
    asyncio.run(go())
