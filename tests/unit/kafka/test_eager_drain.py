"""EagerDrain: eager delivery runs a record's callback as an asyncio task would, and in place
when it does not wait; the fetcher wakes when a full buffer drains; a fetch waits
FETCH_MAX_WAIT_MS, not Faust's 1500 ms. Each with the plain library beside it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from types import SimpleNamespace as NS
from typing import Any, cast

import faust
import pytest
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread
from faust.transport.drivers.aiokafka import Consumer as PlainConsumer
from faust.types import TP

from workers.kafka.eager_drain import FETCH_MAX_WAIT_MS, EagerDrain, _finish


class FakeConsumer:
    """What `EagerDrain._deliver` uses of the consumer: Faust's `wait_first` race."""

    def __init__(self) -> None:
        self.raced = 0
        self.suspend_flow = asyncio.Event()

    async def wait_first(self, *coros: Any) -> None:
        self.raced += 1
        tasks = [asyncio.ensure_future(c) for c in coros]
        done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        for task in done:
            task.result()


def deliver(consumer: FakeConsumer, callback: Any, message: Any) -> Any:
    return EagerDrain._deliver(consumer, callback, message)  # type: ignore[arg-type]


def test_a_callback_that_does_not_wait_runs_in_place() -> None:
    seen: list[int] = []

    async def callback(message: int) -> None:
        seen.append(message)

    async def main() -> int:
        consumer = FakeConsumer()
        await deliver(consumer, callback, 7)
        return consumer.raced

    assert asyncio.run(main()) == 0
    assert seen == [7]


def test_a_callback_that_waits_is_finished_in_the_race_with_suspend_flow() -> None:
    steps: list[str] = []

    async def callback(message: int) -> None:
        steps.append("start")
        await asyncio.sleep(0)  # a bare yield
        steps.append(f"got {await future_with(message)}")
        try:
            await failing_future()
        except ValueError as exc:
            steps.append(f"raised {exc}")

    async def main() -> int:
        consumer = FakeConsumer()
        await deliver(consumer, callback, 3)
        return consumer.raced

    assert asyncio.run(main()) == 1
    assert steps == ["start", "got 3", "raised boom"]


def test_a_callback_sees_the_cancellation_where_it_waits() -> None:
    seen: list[str] = []

    async def main() -> None:
        blocker: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        async def callback() -> None:
            try:
                await blocker
            except asyncio.CancelledError:
                seen.append("cancelled")
                raise

        coro = callback()
        waits_on = coro.send(None)
        task = asyncio.ensure_future(_finish(coro, waits_on))
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert blocker.cancelled()

    asyncio.run(main())
    assert seen == ["cancelled"]


def test_an_error_in_a_callback_reaches_the_drain_loop() -> None:
    async def callback(_: Any) -> None:
        raise RuntimeError("bad record")

    with pytest.raises(RuntimeError, match="bad record"):
        asyncio.run(deliver(FakeConsumer(), callback, None))


async def future_with(value: int) -> int:
    future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    asyncio.get_running_loop().call_later(0.01, future.set_result, value)
    return await future


async def failing_future() -> None:
    future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    asyncio.get_running_loop().call_soon(future.set_exception, ValueError("boom"))
    await future




async def _fetch_max_wait_ms(plain: bool) -> int:
    app = faust.App("fetch-wait", broker="kafka://127.0.0.1:1", store="memory://")
    app.transport.Consumer = EagerDrain  # type: ignore[misc]
    consumer: Any = app.consumer
    thread = (AIOKafkaConsumerThread(consumer, loop=consumer.loop, beacon=consumer.beacon)
              if plain else consumer._thread)  # EagerDrain._new_consumer_thread's
    kafka = thread._create_worker_consumer(cast(Any, app.transport))
    await kafka.stop()
    return int(kafka._fetch_max_wait_ms)


def test_plain_faust_waits_1500_ms_for_a_fetch() -> None:
    assert asyncio.run(_fetch_max_wait_ms(plain=True)) == 1500


def test_a_fetch_waits_at_most_fetch_max_wait_ms() -> None:
    assert asyncio.run(_fetch_max_wait_ms(plain=False)) == FETCH_MAX_WAIT_MS == 100


TP0 = TP("raw-events", 0)
N_RECORDS = 50


def _consumer(cls: type[PlainConsumer], name: str) -> Any:
    app = faust.App(name, broker="kafka://127.0.0.1:1", store="memory://")
    app.transport.Consumer = cls  # type: ignore[misc]
    consumer = app.consumer
    assert type(consumer) is cls
    return consumer


async def _drain(cls: type[PlainConsumer]) -> tuple[int, int]:
    """The consumer's `_drain_messages` over one fetch of N_RECORDS records, with a
    callback that never waits (the common case). Returns how often it raced a callback
    in `wait_first`, and how many asyncio tasks it created."""
    consumer = _consumer(cls, "drain-test")
    fetcher = NS(_stopped=asyncio.Event())
    delivered: list[int] = []

    async def callback(message: Any) -> None:
        delivered.append(message.offset)

    async def getmany(timeout: float) -> AsyncIterator[tuple[TP, Any]]:
        for offset in range(N_RECORDS):
            yield TP0, NS(offset=offset, topic=TP0.topic, key=None, value=b"")
        fetcher._stopped.set()  # one fetch, then the fetcher stops

    raced = 0
    wait_first = consumer.wait_first

    async def counted_wait_first(*coros: Any, **kwargs: Any) -> Any:
        nonlocal raced
        raced += 1
        return await wait_first(*coros, **kwargs)

    tasks = 0

    def counting_factory(loop: asyncio.AbstractEventLoop, coro: Any, **kw: Any) -> Any:
        nonlocal tasks
        tasks += 1
        return asyncio.Task(coro, loop=loop, **kw)

    consumer.callback, consumer.getmany = callback, getmany
    consumer.wait_first = counted_wait_first
    loop = asyncio.get_running_loop()
    loop.set_task_factory(counting_factory)
    try:
        await consumer._drain_messages(fetcher)
    finally:
        loop.set_task_factory(None)
    assert delivered == list(range(N_RECORDS))
    return raced, tasks


def test_plain_faust_races_four_tasks_per_delivered_record() -> None:
    # When this fails, Faust delivers without the race and EagerDrain._drain_messages
    # can go (workers/kafka/fixes.py).
    raced, tasks = asyncio.run(_drain(PlainConsumer))
    assert raced == N_RECORDS
    assert tasks >= 4 * N_RECORDS  # the callback, suspend_flow, stopped, crashed


def test_a_record_whose_callback_does_not_wait_is_delivered_in_place() -> None:
    raced, tasks = asyncio.run(_drain(EagerDrain))
    assert raced == 0
    assert tasks <= 1  # none per record


async def _woken_after_a_drain(cls: type[PlainConsumer]) -> float | None:
    """Every partition's stream buffer is full when the consumer asks for records; one
    drains 50 ms later. Returns how long `_wait_next_records` took, or None if it still
    waited 0.5 s later (and then the drained partition has to be the one it fetches)."""
    consumer = _consumer(cls, "full-buffers-test")
    consumer._active_partitions = {TP0}
    consumer.on_buffer_full(TP0)
    assert not consumer._get_active_partitions()

    async def no_fetch(active_partitions: Any, timeout: float) -> Any:
        raise AssertionError("fetched with every buffer full")

    consumer._getmany = no_fetch
    loop = asyncio.get_running_loop()
    loop.call_later(0.05, consumer.on_buffer_drop, TP0)
    start = loop.time()
    try:
        records, active = await asyncio.wait_for(consumer._wait_next_records(1.0), 0.5)
    except TimeoutError:
        return None
    assert (records, active) == ({}, {TP0})
    return loop.time() - start


def test_plain_faust_sleeps_on_when_a_full_buffer_drains() -> None:
    # When this fails, Faust wakes its fetcher itself and EagerDrain._wait_next_records
    # and on_buffer_drop can go (workers/kafka/fixes.py).
    assert asyncio.run(_woken_after_a_drain(PlainConsumer)) is None  # its whole second


def test_the_fetcher_wakes_as_soon_as_a_full_buffer_drains() -> None:
    took = asyncio.run(_woken_after_a_drain(EagerDrain))
    assert took is not None and 0.04 <= took < 0.3, took
