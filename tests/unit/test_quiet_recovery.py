"""QuietRecovery's seek: no offset below 0, and no None, reaches aiokafka (it raises)."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

from faust.types import TP

from workers.kafka.quiet_recovery import QuietRecovery


class Consumer:
    def __init__(self) -> None:
        self.sought: dict[Any, int] = {}

    async def seek_wait(self, offsets: dict[Any, int]) -> None:
        self.sought = offsets


def test_standby_offsets_missing_or_below_zero_are_sought_to_the_start() -> None:
    a, b, c, d = (TP("eventguard-usage-changelog", n) for n in range(4))
    offsets: Counter[TP] = Counter({a: -2, b: -1, c: 0, d: 41})
    offsets[a] = None  # type: ignore[assignment]  # what a standby without local state had
    consumer = Consumer()
    # The method uses nothing of the instance; a Recovery needs a running app to build.
    asyncio.run(QuietRecovery._seek_offsets(
        None, consumer, {a, b, c, d}, offsets, "standby"))  # type: ignore[arg-type]
    assert consumer.sought == {a: 0, b: 0, c: 0, d: 41}
