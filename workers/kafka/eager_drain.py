"""Faust's Kafka consumer, handing each fetched record to the streams without four tasks.

faust-streaming 0.15.3 `Consumer._drain_messages` delivers every record with
`await self.wait_first(callback(message), self.suspend_flow.wait())`: four asyncio tasks
(the callback, the flow event, the stopped and crashed events), an `asyncio.wait` and three
cancellations per record, about a quarter of a bare Faust agent's event loop. The callback
(the conductor's `on_message`) almost always finishes without waiting: it decodes the
record and puts the event in a stream's buffer that has room.

This consumer runs the callback eagerly, as Python 3.12's eager tasks do: one step,
in place. If the callback finishes in that step, that's it. If it has to wait (the
flow is suspended for a rebalance, a buffer is full, the producer buffer is high),
the rest of it runs exactly as Faust runs it: raced against `suspend_flow` (and the
consumer stopping or crashing) by `wait_first`, so a rebalance still interrupts it.
The loop is otherwise Faust's own.

And when every partition's stream buffer is full (the agent is behind), Faust stops
fetching and sleeps a whole second (`_wait_next_records`), and a fetch for the active
partitions waits up to a second: the agent then finishes its buffer and sits idle for
most of that second. This consumer wakes up as soon as a buffer drained (Faust's
`on_buffer_drop`), and waits at most FETCH_WAIT_S for a fetch.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import Any, cast

from aiokafka.consumer.fetcher import OffsetResetStrategy
from faust.transport.consumer import CONSUMER_FETCHING
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread

from workers.kafka.commit_before_revoke import CommitBeforeRevoke

FETCH_WAIT_S = 0.1  # Faust: 1.0; a fetch is a call to the consumer thread, not a request
FULL_WAIT_S = 1.0  # Faust's sleep when every buffer is full; a drained buffer ends it


# Faust builds its aiokafka consumer with fetch_max_wait_ms=1500: one fetch in flight per
# broker waits that long on partitions that are caught up, and a partition whose fetched
# records were just used up waits for it too (a 1.5 s stall at the end of a backlog).
FETCH_MAX_WAIT_MS = 100
# Topics whose partitions without a committed offset go back to the reset policy after a
# table recovery (see _seek_to_committed); the app adds raw-events. Not auth-config: its
# records are applied from where the key table's recovery left off, and reading all of
# it again re-applied 10,000 keys one by one after a SIGKILL (tests/chaos/test_key_table).
RESET_WHEN_UNCOMMITTED: set[str] = set()


class _ConsumerThread(AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: Any) -> Any:
        """Faust's aiokafka consumer with fetch_max_wait_ms=FETCH_MAX_WAIT_MS, not 1500.

        Upstream: no issue found. Remove when Faust takes fetch_max_wait_ms from a setting
        (then set it there)."""
        consumer = super()._create_worker_consumer(transport)
        consumer._fetch_max_wait_ms = FETCH_MAX_WAIT_MS  # read by its fetcher at start
        return consumer

    async def seek_to_committed(self) -> Any:
        return await self.call_thread(self._seek_to_committed)

    async def _seek_to_committed(self) -> Any:
        """aiokafka's `seek_to_committed`, which also moves a raw-events partition with no
        committed offset (or offset 0) back to where the reset policy starts it.

        aiokafka seeks only partitions whose committed offset is > 0 and leaves the others
        where its fetcher got to. After a table recovery Faust throws away what was fetched
        meanwhile (workers/kafka/quiet_recovery.py) and relies on this seek to read it
        again: a partition the group never committed (a worker that died before its first
        commit) kept its position past those records, and they were never decided
        (tests/integration/test_worker_faults.py, 5 runs of 10 under load).

        Upstream: no issue found; it repairs the drop that QuietRecovery fixes at its source.
        Remove with QuietRecovery.on_recovery_completed."""
        consumer = self._ensure_consumer()
        committed: dict[Any, Any] = await consumer.seek_to_committed()
        fetcher = consumer._fetcher
        unset = [tp for tp, offset in committed.items()
                 if (offset is None or offset <= 0) and tp.topic in RESET_WHEN_UNCOMMITTED]
        if unset and fetcher._default_reset_strategy != OffsetResetStrategy.NONE:
            await fetcher.request_offset_reset(unset, fetcher._default_reset_strategy)
        return committed


class EagerDrain(CommitBeforeRevoke):
    """Faust's Kafka consumer (with commit-before-revoke), delivering records eagerly."""

    def _new_consumer_thread(self) -> Any:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)

    _drained: asyncio.Event | None = None

    def on_buffer_drop(self, tp: Any) -> None:
        super().on_buffer_drop(tp)
        if self._drained is not None:
            self._drained.set()

    async def _wait_next_records(self, timeout: float) -> Any:
        """Faust's, but when every stream buffer is full it waits for one to drain, not 1 s.

        Upstream: no issue found. Remove when Faust wakes its fetcher on a drained buffer."""
        if self._drained is None:
            self._drained = asyncio.Event()
        self._drained.clear()
        if not self.flow_active or self.app.client_only or self._get_active_partitions():
            return await super()._wait_next_records(timeout)
        # Every partition's buffer is full: wait for one to drain, not a whole second.
        self.not_waiting_next_records.set()
        await self.wait_first(self._drained.wait(), timeout=FULL_WAIT_S)
        return {}, self._get_active_partitions()

    async def _deliver(self, callback: Callable[[Any], Awaitable[None]], message: Any) -> None:
        coro = cast(Coroutine[Any, Any, None], callback(message))
        try:
            waits_on = coro.send(None)
        except StopIteration:
            return  # done in one step: the common case
        await self.wait_first(_finish(coro, waits_on), self.suspend_flow.wait())

    async def _drain_messages(self, fetcher: Any) -> None:
        """faust-streaming 0.15.3's, copied, with `_deliver` for its per-record `wait_first`
        (the module's docstring). Upstream: no issue found (Faust's cost per record in
        general: robinhood/faust #563). Remove when Faust delivers a record without racing
        four tasks for it."""
        callback = self.callback
        getmany = self.getmany
        consumer_should_stop = self._stopped.is_set
        fetcher_should_stop = fetcher._stopped.is_set
        get_read_offset = self._read_offset.__getitem__
        set_read_offset = self._read_offset.__setitem__
        set_flag = self.diag.set_flag
        unset_flag = self.diag.unset_flag
        commit_every = self._commit_every
        acks_enabled_for = self.app.topics.acks_enabled_for
        deliver = self._deliver
        yield_every, num_since_yield = 100, 0
        sleep = asyncio.sleep
        try:
            while not (consumer_should_stop() or fetcher_should_stop()):
                set_flag(CONSUMER_FETCHING)
                ait = cast(AsyncIterator[Any], getmany(timeout=FETCH_WAIT_S))
                await self.sleep(0)
                if not self.should_stop:
                    async for tp, message in ait:
                        num_since_yield += 1
                        if num_since_yield > yield_every:
                            await sleep(0)
                            num_since_yield = 0
                        offset = message.offset
                        r_offset = get_read_offset(tp)
                        if r_offset is None or offset >= r_offset:
                            gap = offset - (r_offset or 0)
                            if gap > 1 and r_offset and acks_enabled_for(message.topic):
                                await self._add_gap(tp, r_offset + 1, offset)
                            if commit_every is not None and self._n_acked >= commit_every:
                                self._n_acked = 0
                                await self.commit()
                            await deliver(callback, message)
                            set_read_offset(tp, offset)
                        else:
                            self.log.dev("DROPPED MESSAGE ROFF %r: k=%r v=%r",
                                         offset, message.key, message.value)
                    unset_flag(CONSUMER_FETCHING)
        except self.consumer_stopped_errors:
            if self.transport.app.should_stop:
                self.log.info("Broker stopped consumer, shutting down...")
                return
            raise
        except asyncio.CancelledError:
            if self.transport.app.should_stop:
                self.log.info("Consumer shutting down for user cancel.")
                return
            raise
        except Exception as exc:
            self.log.exception("Drain messages raised: %r", exc)
            raise
        finally:
            unset_flag(CONSUMER_FETCHING)


async def _finish(coro: Coroutine[Any, Any, None], waits_on: Any) -> None:
    """Run a coroutine that suspended on `waits_on` to its end, as an asyncio task would."""
    while True:
        if waits_on is None:  # a bare yield: asyncio.sleep(0)
            await asyncio.sleep(0)
        else:
            waits_on._asyncio_future_blocking = False
            try:
                await asyncio.wait((waits_on,))
            except asyncio.CancelledError:
                # As Task.cancel: cancel what it waits on, and let it see that where it waits.
                waits_on.cancel()
                _close(coro)
                raise
        try:
            waits_on = coro.send(None)
        except StopIteration:
            return


def _close(coro: Coroutine[Any, Any, None]) -> None:
    try:
        coro.send(None)  # raises CancelledError inside, where it waits
    except (StopIteration, asyncio.CancelledError):
        return
    coro.close()  # it caught the cancellation and waits again: end it

