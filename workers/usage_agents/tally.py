"""audit-log -> per-key usage deltas, keyed by key id, for the usage tables.

A plain aiokafka consumer in a consumer group of its own (`<usage app id>-tally`, beside
the usage app's own group, which reads the deltas), not a Faust stream: a Faust stream on
audit-log cost a saturated worker 30-50% of its decisions (`bench pipeline`), as much with
a tally that did nothing, because Faust's per-record work is most of a decision's cost.
Here the broker holds each fetch until about a second of records is there, and a batch
costs one JSON parse per record and a few sends.

At-least-once: a batch's offsets are committed only after its deltas are acknowledged.
A rebalance waits for the batch in hand and its commit, and so does a stop (SIGTERM); a
process killed between the two counts that batch again wherever its partitions go.

A key id counts under its own name only when the key table holds it; this process reads
the key table's changelog itself (`known_keys`, a group-less consumer), not the worker's
Faust table: the worker and the usage process share topics, nothing else.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import KafkaError, NoOffsetForPartitionError

from workers import kafka_security
from workers.usage.summary import SPAN_S
from workers.usage.tally import Tally
from workers.usage_app import APP_ID, AUDIT_LOG, app, bootstrap, deltas, known_keys

log = logging.getLogger(__name__)
DELTAS = deltas.get_topic_name()
GROUP = f"{APP_ID}-tally"
FETCH_WAIT_MS, FETCH_MIN_BYTES = 1000, 1024 * 1024  # about a second of records per batch
EXIT_CODE = 70  # as the worker's: a supervisor restarts the process


class _Batches(ConsumerRebalanceListener):  # type: ignore[misc]
    """Holds a rebalance until the batch in hand is counted and committed."""

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.epoch = 0  # rebalances so far

    async def on_partitions_revoked(self, revoked: Any) -> None:
        async with self.lock:
            self.epoch += 1

    async def on_partitions_assigned(self, assigned: Any) -> None:
        return None


@app.task
async def follow_known_keys() -> None:
    """Keep `known_keys` current; a failed read starts again from the beginning (applying
    a record is idempotent)."""
    while True:
        try:
            await known_keys.run(bootstrap)
        except (KafkaError, OSError) as exc:
            log.warning("usage: reading %s failed (%s); retrying in 2 s", known_keys.topic,
                        type(exc).__name__)
            await asyncio.sleep(2)


@app.task
async def tally_usage() -> None:
    await known_keys.ready.wait()  # before it, every key id would count as unknown
    batches = _Batches()
    consumer = AIOKafkaConsumer(
        **kafka_security.options(),
        bootstrap_servers=bootstrap, group_id=GROUP, enable_auto_commit=False,
        auto_offset_reset="none", fetch_max_wait_ms=FETCH_WAIT_MS,
        fetch_min_bytes=FETCH_MIN_BYTES, session_timeout_ms=10_000,
        heartbeat_interval_ms=1_000)
    consumer.subscribe([AUDIT_LOG], listener=batches)
    await consumer.start()
    current: asyncio.Task[None] | None = None
    try:
        while True:
            epoch = batches.epoch
            try:
                got = await consumer.getmany(timeout_ms=FETCH_WAIT_MS, max_records=20_000)
            except NoOffsetForPartitionError as exc:
                await _start_an_hour_back(consumer, exc.args[0])
                continue
            # Counted and committed under the lock, which a rebalance waits for. Not fetched
            # under it: aiokafka's getmany waits for a rebalance to end. A batch that a
            # rebalance overtook is dropped and read again from the committed offset.
            async with batches.lock:
                if got and epoch == batches.epoch:
                    current = asyncio.ensure_future(_count(consumer, got))
                    await asyncio.shield(current)
                elif got:
                    await _read_again(consumer, got)
    finally:
        if current is not None and not current.done():
            with contextlib.suppress(Exception):  # a stop: finish the batch and its commit
                await current
        await consumer.stop()


async def _read_again(consumer: AIOKafkaConsumer, got: dict[TopicPartition, list[Any]]
                      ) -> None:
    """Seek the partitions of a dropped batch back to the group's committed offsets.

    aiokafka moves a partition's position as soon as it hands records over. A batch
    fetched before the rebalance is read again anyway (the new assignment starts from
    the committed offsets), but a batch fetched after it, by a getmany that began before
    it, is not: the next batch would be committed past it and its decisions never counted
    (a usage process SIGSTOPped past its session timeout lost about 3,000 of 5,000)."""
    assigned = consumer.assignment()
    for tp, records in got.items():
        if tp not in assigned:
            continue  # another process has it now, from the committed offset
        committed = await consumer.committed(tp)
        consumer.seek(tp, committed if committed is not None else records[0].offset)
    log.info("usage: a batch of %d records fetched across a rebalance is read again",
             sum(len(r) for r in got.values()))


async def _start_an_hour_back(consumer: AIOKafkaConsumer, tp: TopicPartition) -> None:
    """A partition the group never committed (a new deployment) starts an hour back: what
    usage shows."""
    found = await consumer.offsets_for_times({tp: int((time.time() - SPAN_S) * 1000)})
    at = found.get(tp)
    consumer.seek(tp, at.offset if at is not None else (await consumer.end_offsets([tp]))[tp])


async def _count(consumer: AIOKafkaConsumer, got: dict[TopicPartition, list[Any]]) -> None:
    try:
        keys = known_keys.state.keys
        tally = Tally(lambda key_id: keys.get(key_id) is not None)
        for records in got.values():
            for record in records:
                tally.add(record.value, record.timestamp)
        sends = [await app.producer.send(DELTAS, key, value, partition=None,
                                         timestamp=None, headers=None)
                 for key, value in tally.deltas()]
        await asyncio.gather(*sends)
    except Exception as exc:
        # Committing the next batch would skip this one's counts: exit before it.
        log.critical("usage: a batch failed (%s); exiting with code %d so that the "
                     "supervisor restarts this process; the batch will be counted again",
                     type(exc).__name__, EXIT_CODE, exc_info=True)
        logging.shutdown()
        os._exit(EXIT_CODE)
    try:
        await consumer.commit({tp: records[-1].offset + 1 for tp, records in got.items()})
    except KafkaError as exc:  # the group moved on: whoever has the partitions counts again
        log.warning("usage: commit failed (%s); a batch may be counted twice",
                    type(exc).__name__)
