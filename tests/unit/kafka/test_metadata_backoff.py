"""A failed metadata refresh makes aiokafka's refresh loops wait, not spin."""

from __future__ import annotations

import asyncio
import inspect

import pytest
from aiokafka.client import AIOKafkaClient

from workers.kafka import metadata_backoff


async def _refreshes(seconds: float) -> int:
    """How often a loop that forces a refresh and awaits it (aiokafka's fetcher and
    sender when a partition has no leader) gets one, while every refresh fails at once
    (this client knows no broker)."""
    client = AIOKafkaClient(bootstrap_servers="127.0.0.1:9", retry_backoff_ms=100)
    sync = asyncio.ensure_future(client._md_synchronizer())  # what bootstrap() starts
    loop = asyncio.get_running_loop()
    end, n = loop.time() + seconds, 0
    try:
        while loop.time() < end:
            await client.force_metadata_update()
            n += 1
    finally:
        sync.cancel()
    return n


def test_a_failed_refresh_waits_the_retry_backoff() -> None:
    metadata_backoff.install()
    metadata_backoff.install()  # idempotent: one wait, not two
    n = asyncio.run(_refreshes(0.5))
    assert 2 <= n <= 6, n  # 100 ms each; thousands without the backoff


def test_plain_aiokafka_refreshes_again_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    # The bug (aiokafka PR #1014, unmerged): when this fails, aiokafka backs off by itself
    # and metadata_backoff can go (workers/kafka/fixes.py).
    metadata_backoff.install()
    plain = inspect.unwrap(AIOKafkaClient._metadata_update)
    monkeypatch.setattr(AIOKafkaClient, "_metadata_update", plain)
    n = asyncio.run(_refreshes(0.5))
    assert n > 50, n
