"""Every worker's nonce cache, shared through the nonces topic.

The authorize agent publishes each nonce it accepts; every worker reads the
topic (group-less, from twice the replay window ago) into its own cache. A
worker that takes over a partition after a rebalance or restart therefore
knows the nonces used before, and a replay is refused wherever it lands.
"""

from __future__ import annotations

import asyncio
import logging
import time

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from workers import kafka_security
from workers.agents import outbox
from workers.app import app, bootstrap, key_state, nonces
from workers.auth.signing import WINDOW_S

log = logging.getLogger(__name__)
NONCES = nonces.get_topic_name()
ready = asyncio.Event()


def collect(out: outbox.Outputs) -> None:
    """Add the nonces the last decisions used to a batch's outputs (sent before the commit)."""
    cache = key_state.state.nonces
    while cache.fresh:
        key, delivery, at = cache.fresh.pop()
        out.add(NONCES, key.encode(), orjson.dumps([delivery, at]))


@app.task
async def follow_nonces() -> None:
    consumer = AIOKafkaConsumer(**kafka_security.options(),
                                bootstrap_servers=bootstrap, group_id=None,
                                enable_auto_commit=False, fetch_max_wait_ms=50)
    await consumer.start()
    try:
        await consumer.topics()  # load the topic's metadata
        tps = [TopicPartition(NONCES, p) for p in consumer.partitions_for_topic(NONCES) or {0}]
        consumer.assign(tps)
        since = int((time.time() - 2 * WINDOW_S) * 1000)
        found = await consumer.offsets_for_times(dict.fromkeys(tps, since))
        ends = await consumer.end_offsets(tps)
        for tp in tps:
            offset = found.get(tp)
            consumer.seek(tp, offset.offset if offset is not None else ends[tp])
        while True:
            batches = await consumer.getmany(timeout_ms=200, max_records=5000)
            now = time.time()
            for msgs in batches.values():
                for m in msgs:
                    _remember(m.key, m.value, now)
            if not ready.is_set():
                positions = [await consumer.position(tp) for tp in tps]
                if all(pos >= ends[tp] for pos, tp in zip(positions, tps, strict=True)):
                    log.info("nonces: caught up")
                    ready.set()
    finally:
        await consumer.stop()


def _remember(key: bytes | None, value: bytes | None, now: float) -> None:
    try:
        delivery, at = orjson.loads(value or b"")
        key_state.state.nonces.remember((key or b"").decode(), str(delivery), float(at), now)
    except (ValueError, TypeError):
        log.warning("nonces: skipped a malformed record")
