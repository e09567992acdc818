"""The worker's one way to hand an output record to Kafka.

`app.producer.send` only enqueues. Faust flushes the producer before it commits
the raw-events offset, so an output that is enqueued is either delivered or the
event it came from is decided again. Two things break that promise, and both
end the process instead of leaving an agent dead in a live worker:
- a send that raises a non-retriable error (a retriable one is retried);
- a delivery that fails after the send returned: the event may already be
  acked, so only an exit before the next commit keeps it from being lost.
The supervisor (systemd, Kubernetes, docker-compose `restart:`) starts the
worker again, and the group hands its partitions to a live worker meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from typing import cast

from aiokafka.errors import KafkaError

from workers.app import app

log = logging.getLogger(__name__)
EXIT_CODE = 70  # EX_SOFTWARE: the supervisor should restart the worker
RETRY_DELAYS_S = (0.05, 0.2, 0.5, 1.0, 2.0, 5.0)  # the last one repeats
_last_retry_log = 0.0


async def send(topic: str, key: bytes, value: bytes) -> None:
    attempt = 0
    while True:
        try:
            delivery = await app.producer.send(topic, key, value, None, None, None)
        except Exception as exc:
            cause = exc.__cause__ if isinstance(exc.__cause__, KafkaError) else exc
            if not getattr(cause, "retriable", False):
                die(f"Kafka refused a record for {topic} ({_name(cause)})")
            _log_retry(topic, cause)
            await asyncio.sleep(RETRY_DELAYS_S[min(attempt, len(RETRY_DELAYS_S) - 1)])
            attempt += 1
            continue
        cast("asyncio.Future[object]", delivery).add_done_callback(_delivered)
        return


def _delivered(delivery: asyncio.Future[object]) -> None:
    if delivery.cancelled():
        return  # the producer is stopping: nothing after this is committed
    exc = delivery.exception()
    if exc is not None:
        die(f"an output record was not delivered ({_name(exc)})")


def die(reason: str) -> None:
    """Exit now, before Faust commits offsets whose outputs may be missing."""
    log.critical("worker: %s. Exiting with code %d so that the supervisor restarts it; "
                 "events since the last commit will be decided again.", reason, EXIT_CODE)
    logging.shutdown()
    os._exit(EXIT_CODE)


def _log_retry(topic: str, exc: BaseException) -> None:
    global _last_retry_log
    now = time.monotonic()
    if now - _last_retry_log >= 10.0:  # one line per 10 s while Kafka is away
        _last_retry_log = now
        log.warning("worker: sending to %s failed (%s); retrying", topic, _name(exc))


def _name(exc: BaseException) -> str:
    return type(exc).__name__
