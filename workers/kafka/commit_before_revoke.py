"""Faust's Kafka consumer, committing acked offsets before a rebalance takes them away."""

from __future__ import annotations

import logging

from faust.transport.drivers.aiokafka import Consumer as AIOKafkaConsumer
from faust.types import TP

log = logging.getLogger(__name__)


class CommitBeforeRevoke(AIOKafkaConsumer):
    """Faust's Kafka consumer, committing the acked offsets before a rebalance.

    faust-streaming 0.15.3 `Consumer.on_partitions_revoked` first forgets the revoked
    partitions' acked-but-uncommitted offsets (`_acked`, `_committed_offset`), and only then
    runs the app's revoke handler, whose commit therefore cannot include them. Every
    rebalance made every surviving worker decide up to a commit interval of events again.
    """

    async def on_partitions_revoked(self, revoked: set[TP]) -> None:
        """Commit first, then Faust's revoke (the class docstring says why).

        Upstream: faust-streaming #502 (messages processed twice after a rebalance), open.
        Remove when Faust commits the acked offsets before it forgets revoked partitions."""
        try:
            await self.commit()
        except Exception:  # Faust's own revoke handling must run whatever happens here
            log.exception("commit before rebalance failed; continuing")
        await super().on_partitions_revoked(revoked)
