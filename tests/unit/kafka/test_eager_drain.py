"""EagerDrain: eager delivery runs a record's callback as an asyncio task would; a fetch
waits FETCH_MAX_WAIT_MS, not Faust's 1500 ms."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import faust
import pytest
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread

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
