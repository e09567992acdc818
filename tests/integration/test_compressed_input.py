"""raw-events written by a Java producer with each compression codec (issue 8):
Kafka's own clients compress by default in many deployments, and a codec the
worker cannot read would stop its partition. Every record is decided."""

from __future__ import annotations

import asyncio
import subprocess

import pytest

from tests.integration.conftest import Env
from workers.devstack import broker

RECORDS = 20


def java_produce(bootstrap: str, topic: str, codec: str) -> None:
    """Kafka's own ProducerPerformance tool: random bodies, no headers."""
    done = subprocess.run(
        [broker._java(), "-Xmx128m", "-cp", f"{broker.provision()}/*",
         "org.apache.kafka.tools.ProducerPerformance", "--topic", topic,
         "--num-records", str(RECORDS), "--record-size", "200", "--throughput", "-1",
         "--producer-props", f"bootstrap.servers={bootstrap}", f"compression.type={codec}",
         "linger.ms=50", "batch.size=65536", "acks=all"],
        capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


async def end_offsets(env: Env) -> dict[int, int]:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(bootstrap_servers=env.bootstrap)
    await consumer.start()
    try:
        tps = [TopicPartition(env.prefix + "raw-events", p) for p in range(4)]
        ends = await consumer.end_offsets(tps)
        return {tp.partition: off for tp, off in ends.items()}
    finally:
        await consumer.stop()


@pytest.mark.parametrize("codec", ["gzip", "snappy", "lz4", "zstd"])
def test_every_codec_is_read_and_decided(env: Env, codec: str) -> None:
    async def go() -> None:
        async with env.collector() as col:
            before = await end_offsets(env)
            await asyncio.to_thread(java_produce, env.bootstrap, env.prefix + "raw-events",
                                    codec)
            after = await end_offsets(env)
            ids = [f"{env.prefix}raw-events-{p}-{o}"
                   for p in before for o in range(before[p], after[p])]
            assert len(ids) == RECORDS
            for rid in ids:
                got = await col.decision(rid, timeout_s=30)
                [audit] = got["audit-log"]
                # Random bytes with no eg-endpoint header: malformed, but decided.
                assert audit["reason"] == "malformed_event", (codec, audit)
                assert "unreadable" not in audit["detail"], (codec, audit)
    asyncio.run(go())
