"""Least privilege on Kafka (issue 18): a 3-node cluster of the test's own with SASL/SCRAM
over TLS and ACLs. The pipeline decides as before, each process as its own Kafka user;
a user is refused what its role may not do, and a client without credentials gets nothing.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import (
    GroupAuthorizationFailedError,
    KafkaConnectionError,
    KafkaError,
    TopicAuthorizationFailedError,
)

from tests.integration.conftest import write_config
from workers import kafka_security, settings, topics
from workers.devstack import secure
from workers.devstack.cluster import Cluster, replication
from workers.devstack.processes import Proc, Stack, free_port, wait_http
from workers.paths import cache_dir

pytestmark = pytest.mark.cluster
NODES = 3


@dataclass
class Secured:
    cluster: Cluster
    prefix: str
    app_id: str
    url: str
    secret: str
    stack: Stack
    worker: Proc
    config: Path

    def cli(self, role: str, *args: str) -> subprocess.CompletedProcess[str]:
        """`eventguard ARGS` as `role`'s Kafka user."""
        return subprocess.run(
            [sys.executable, "-m", "workers.cli", *args, ], capture_output=True, text=True,
            timeout=120, check=False, env={
                **os.environ, **self.cluster.material.env(role),
                settings.BOOTSTRAP_ENV: self.cluster.bootstrap, settings.PREFIX_ENV: self.prefix,
                settings.CONFIG_ENV: str(self.config)})

    def security(self, role: str) -> kafka_security.KafkaSecurity:
        return self.cluster.material.security(role)


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Secured]:
    tmp = tmp_path_factory.mktemp("secure")
    cluster = Cluster(tmp / "kafka")
    prefix = f"sec{secrets.token_hex(3)}."
    app_id = f"{prefix}eventguard"
    stack = Stack(cache_dir() / "test-logs" / prefix.rstrip("."), "", prefix)
    try:
        started = time.monotonic()
        cluster.start(NODES, secure=True)
        stack.bootstrap = cluster.bootstrap
        material = cluster.material
        rf, min_isr = replication(NODES)
        secret = f"sec-{secrets.token_hex(8)}"
        config = write_config(tmp / "eventguard.yaml", [{"id": "backend", "server_secret": secret}],
                              kafka={"replication_factor": rf, "min_insync_replicas": min_isr})
        # As an operator would: the admin user makes the topics with the CLI.
        subprocess.run([sys.executable, "-m", "workers.cli", "topics", "apply", "--config",
                        str(config)], check=True, capture_output=True, timeout=120, env={
            **os.environ, **material.env(secure.ADMIN),
            settings.BOOTSTRAP_ENV: cluster.bootstrap, settings.PREFIX_ENV: prefix})
        count = asyncio.run(secure.grant(cluster.bootstrap, material.security(secure.ADMIN),
                                         prefix, app_id))
        print(f"\n[secure] {NODES} nodes, topics and {count} ACLs in "
              f"{time.monotonic() - started:.1f}s at {cluster.bootstrap}")
        worker = stack.worker(config, env=material.env("worker"))
        usage = stack.usage(config, env=material.env("usage"))
        port = free_port()
        stack.ingest(config, port, env={
            **material.env("ingest"),
            kafka_security.KEY_ADMIN_USERNAME_ENV: "keyadmin",
            kafka_security.KEY_ADMIN_PASSWORD_ENV: material.password("keyadmin")})
        wait_http(worker.url + "/ready", worker, 180.0)
        wait_http(usage.url + "/ready", usage, 180.0)
        yield Secured(cluster, prefix, app_id, f"http://127.0.0.1:{port}", secret, stack, worker,
                      config)
    finally:
        stack.stop()
        cluster.stop(kill=True)


def test_the_pipeline_decides_with_each_process_as_its_own_user(secured: Secured) -> None:
    async def go() -> dict[str, object]:
        consumer = AIOKafkaConsumer(
            secured.prefix + "accepted-events", **secured.security("consumer").options(),
            bootstrap_servers=secured.cluster.bootstrap,
            group_id=f"{secured.prefix}{secure.DOWNSTREAM_GROUP}-test",
            auto_offset_reset="earliest", enable_auto_commit=False)
        await consumer.start()
        try:
            wanted: set[str] = set()
            deadline = time.monotonic() + 120
            async with aiohttp.ClientSession() as s:
                while time.monotonic() < deadline:
                    async with s.post(f"{secured.url}/api/v1/s2s/event?token={secured.secret}",
                                      data=b'{"event_type":"page"}') as r:
                        assert r.status == 200, await r.text()
                        wanted.add((await r.json())["request_id"])
                    got = await consumer.getmany(timeout_ms=1000)
                    for records in got.values():
                        for record in records:
                            value = orjson.loads(record.value)
                            if value["request_id"] in wanted:
                                return dict(value)
            raise AssertionError("no decision on accepted-events within 120 s")
        finally:
            await consumer.stop()
    record = asyncio.run(go())
    assert record["auth"]["key_id"] == "backend"  # type: ignore[index]


@pytest.mark.parametrize(("role", "topic"), [
    ("ingest", "auth-config"),
    ("ingest", "eventguard-keys-changelog"),
    ("consumer", "auth-config"),
    ("usage", "raw-events"),
])
def test_a_user_may_not_write_outside_its_role(secured: Secured, role: str, topic: str) -> None:
    async def go() -> None:
        producer = AIOKafkaProducer(**secured.security(role).options(),
                                    bootstrap_servers=secured.cluster.bootstrap,
                                    request_timeout_ms=15000)
        await producer.start()
        try:
            with pytest.raises(TopicAuthorizationFailedError):
                await producer.send_and_wait(secured.prefix + topic, b'{"id":"x"}', key=b"key/x")
        finally:
            await producer.stop()
    asyncio.run(go())


@pytest.mark.parametrize(("role", "topic"), [
    ("consumer", "raw-events"),
    ("ingest", "raw-events"),
    ("keyadmin", "audit-log"),
])
def test_a_user_may_not_read_outside_its_role(secured: Secured, role: str, topic: str) -> None:
    """Refused, or nothing at all from a topic that has records: never a record."""
    async def records_in(name: str) -> int:
        admin = AIOKafkaConsumer(**secured.security(secure.ADMIN).options(),
                                 bootstrap_servers=secured.cluster.bootstrap)
        await admin.start()
        try:
            return sum((await admin.end_offsets(_partitions(name))).values())
        finally:
            await admin.stop()

    async def go() -> str:
        assert await records_in(secured.prefix + topic) > 0  # so "nothing" means refused
        consumer = AIOKafkaConsumer(**secured.security(role).options(),
                                    bootstrap_servers=secured.cluster.bootstrap, group_id=None,
                                    auto_offset_reset="earliest")
        await consumer.start()
        try:
            consumer.assign(_partitions(secured.prefix + topic))
            try:
                await asyncio.wait_for(consumer.getone(), 20)
            except TopicAuthorizationFailedError:
                return "refused"
            except TimeoutError:
                return "nothing"  # aiokafka retries a topic it may not describe, silently
            return "read"
        finally:
            await consumer.stop()
    outcome = asyncio.run(go())
    print(f"\n[secure] {role} reading {topic}: {outcome}")
    assert outcome in ("refused", "nothing")


def _partitions(topic: str) -> list[TopicPartition]:
    """Every partition of one of eventguard's topics, as topics/ makes it."""
    [spec] = [s for s in topics.load_specs() if topic.endswith("." + s.name)]
    return [TopicPartition(topic, p) for p in range(spec.partitions)]


def test_the_consumer_may_use_only_its_own_groups(secured: Secured) -> None:
    async def go() -> str:
        consumer = AIOKafkaConsumer(
            secured.prefix + "accepted-events", **secured.security("consumer").options(),
            bootstrap_servers=secured.cluster.bootstrap, group_id=secured.app_id,
            auto_offset_reset="earliest")
        try:
            await consumer.start()
            await asyncio.wait_for(consumer.getone(), 20)
        except (GroupAuthorizationFailedError, TopicAuthorizationFailedError):
            return "refused"
        except TimeoutError:
            return "nothing"  # accepted-events has records (the first test sent one)
        finally:
            await consumer.stop()
        return "read"
    outcome = asyncio.run(go())
    print(f"\n[secure] consumer in the worker's group: {outcome}")
    assert outcome in ("refused", "nothing")


@pytest.mark.parametrize("how", ["plaintext", "no password", "wrong password"])
def test_a_client_without_credentials_cannot_connect(secured: Secured, how: str) -> None:
    options: dict[str, object] = {}
    if how != "plaintext":
        good = secured.security("ingest")
        password = "" if how == "no password" else "wrong-" + secrets.token_hex(4)
        options = {**good.options(), "sasl_plain_password": password}

    async def go() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=secured.cluster.bootstrap,
                                    request_timeout_ms=5000, **options)
        with pytest.raises((KafkaConnectionError, KafkaError, OSError)):
            try:
                await producer.start()
                await producer.send_and_wait(secured.prefix + "raw-events", b"{}")
            finally:
                await producer.stop()
    asyncio.run(asyncio.wait_for(go(), 60))


def test_a_refused_command_says_so_in_one_line(secured: Secured) -> None:
    refused = secured.cli("ingest", "keys", "add", "intruder", "--client")
    assert refused.returncode == 1, refused.stderr
    assert refused.stderr.splitlines() == [
        f"eventguard: Kafka refused user ingest: {secured.prefix}auth-config "
        "(TopicAuthorizationFailed); see docs/operations.md for the ACLs"], refused.stderr
    allowed = secured.cli("keyadmin", "keys", "add", "new-backend", "--server")
    assert allowed.returncode == 0, allowed.stderr


@pytest.mark.parametrize(("role", "command"), [
    ("ingest", "worker"), ("consumer", "usage"), ("consumer", "tail")])
def test_a_process_run_as_the_wrong_user_says_so_in_one_line(
        secured: Secured, role: str, command: str) -> None:
    args = [command, "raw-events"] if command == "tail" else [command, "--web-port",
                                                               str(free_port())]
    done = secured.cli(role, *args)
    assert done.returncode == 1, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"eventguard: Kafka refused user {role}: "), (
        done.stderr)
    assert "(TopicAuthorizationFailed)" in lines[0]
