"""aiokafka's metadata refresh, waiting `retry_backoff_ms` after a failed one.

aiokafka 0.14 refreshes metadata in one task per client (`AIOKafkaClient._md_synchronizer`),
woken by `force_metadata_update()`, with no backoff of its own. The producer's sender
(`Sender._sender_routine`, aiokafka/producer/sender.py:158) calls it and waits for the
refresh, and nothing else, whenever a partition it holds records for has no leader (-1);
then it looks again. A broker stopped with SIGTERM first takes its partitions' leaders
away (a single-node KRaft broker has no one to hand them to); Faust's producer, refreshing
on the NotLeaderForPartition answers, kept -1, and once the broker was gone every refresh
failed at once (connection refused): it refreshed 3,300-4,200 times a second for the whole
outage, 60-95% of a core and 20,000-50,000 "Unable to update metadata" / "Unable connect
to node" lines per 10 s (py-spy and a count per client, SIGTERM outages under load). The
fetcher has the same loop (aiokafka/consumer/fetcher.py:559) for a partition without leader.

`install()` makes a failed refresh end `retry_backoff_ms` (100 ms) later, so those loops,
and everyone else who awaits the refresh, try at most ten times a second, as the Java
client's `retry.backoff.ms` does. A refresh that succeeds returns at once. It patches the
client class, as every client (Faust's producer and consumer, the agents' own consumers)
builds its AIOKafkaClient inside aiokafka.
"""

from __future__ import annotations

import asyncio
import functools
from typing import Any

from aiokafka.client import AIOKafkaClient

_installed = False


def install() -> None:
    """Patch aiokafka's client class (every client of the process); idempotent.

    Fixes a refresh loop without a pause while no broker answers (the module's docstring).
    Upstream: aiokafka PR #1014 (https://github.com/aio-libs/aiokafka/pull/1014), unmerged.
    Remove when aiokafka waits retry_backoff_ms after a failed refresh; the test that shows
    the bug in plain aiokafka (tests/unit/kafka/test_metadata_backoff.py) then fails."""
    global _installed
    if _installed:
        return
    original = AIOKafkaClient._metadata_update

    @functools.wraps(original)  # fixes.py digests the library's source through it
    async def metadata_update(self: Any, cluster_metadata: Any, topics: Any) -> bool:
        updated = bool(await original(self, cluster_metadata, topics))
        if not updated:
            await asyncio.sleep(self._retry_backoff)
        return updated

    AIOKafkaClient._metadata_update = metadata_update
    _installed = True
