"""raw-events -> accepted-events | rejected-events, and always audit-log."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from datetime import UTC, datetime
from typing import Any

from workers.agents import nonce_log, outbox
from workers.agents.jwks_refresh import jwks
from workers.app import (
    accepted_events,
    app,
    audit_log,
    config,
    key_state,
    raw_events,
    rejected_events,
)
from workers.auth import outputs
from workers.auth.authorize import decide
from workers.auth.decision import Decision
from workers.auth.reasons import Reason
from workers.auth.request import RawRequest
from workers.faust_app import BATCH, BATCH_WAIT_S
from workers.metrics.worker import Decisions

log = logging.getLogger(__name__)
JWKS_WAIT_S = 3.0  # how long one event may wait for a provider's refetched keys
ACCEPTED = accepted_events.get_topic_name()
REJECTED = rejected_events.get_topic_name()
AUDIT = audit_log.get_topic_name()
WORKER = f"{socket.gethostname()}:{os.getpid()}"
# Room under the topics' max.message.bytes for the record's key and framing.
OUTPUT_LIMIT = config.max_record_bytes - 16 * 1024
# A Counter increment per decision and a bisect per request; turned into Prometheus
# samples only when /metrics is scraped (workers/agents/web.py).
DECISIONS: Decisions | None = Decisions() if config.metrics_enabled else None


@app.agent(raw_events)
async def authorize(stream: Any) -> None:
    await key_state.ready.wait()
    await nonce_log.ready.wait()
    # Batches cut Faust's per-event overhead; take_events acks only after the
    # batch was handled, so delivery stays at-least-once. The whole batch's outputs
    # go to the producer together (outbox.send_all), before the events are acked.
    async for batch in stream.take_events(BATCH, within=BATCH_WAIT_S):
        # Fail closed: a batch waits while the keys are known to be old; the reader heals
        # or ends the process within seconds (workers/keys/follower.py).
        await key_state.current()
        try:
            out = outbox.Outputs()
            for event in batch:
                await _handle(event.message, out)
            nonce_log.collect(out)
            await outbox.send_all(app.producer, out)
        except Exception as exc:
            log.exception("authorize: a batch failed")
            # A live process with a dead agent stops its partitions silently;
            # an exit lets the supervisor restart it, and nothing was committed.
            outbox.die(f"the authorize agent failed ({type(exc).__name__})")


async def _handle(msg: Any, out: outbox.Outputs) -> None:
    request = RawRequest.from_record(
        msg.key, msg.value, msg.headers or (),
        fallback_id=f"{msg.topic}-{msg.partition}-{msg.offset}",
    )
    started = time.perf_counter()
    now = time.time()
    decisions = _decide(request, now)
    for d in decisions:
        if d.detail == "unknown_kid":
            if await _refetched():
                # A provider rotated its keys: decide again with the fresh JWKS. The same
                # record is a redelivery for the nonce cache, not a replay.
                decisions = _decide(request, now)
            break
    duration_us = int((time.perf_counter() - started) * 1e6)
    received = request.received_epoch()
    lag_ms = int((now - received) * 1000) if received is not None else None
    ts = _timestamp(now)
    tally = DECISIONS
    if tally is not None:
        tally.duration_us.observe(duration_us)
    for d in decisions:
        d, value = outputs.bounded(request, d, OUTPUT_LIMIT)
        if tally is not None:
            tally.counts[d.reason, d.method] += 1
        key = d.request_id.encode()
        out.add(ACCEPTED if d.accepted else REJECTED, key, value)
        out.add(AUDIT, key, outputs.audit(
            request, d, ts=ts, duration_us=duration_us, lag_ms=lag_ms, worker=WORKER))


_last_ts: tuple[int, str] = (0, "")


def _timestamp(now: float) -> str:
    """`now` as an ISO 8601 UTC string in milliseconds, formatted once per millisecond."""
    global _last_ts
    ms = int(now * 1000)
    if ms != _last_ts[0]:
        text = datetime.fromtimestamp(now, UTC).isoformat(timespec="milliseconds")
        _last_ts = (ms, text.replace("+00:00", "Z"))
    return _last_ts[1]


def _decide(request: RawRequest, now: float) -> list[Decision]:
    try:
        return decide(request, key_state.state, now)
    except Exception as exc:  # a bug must not stall the partition; the event is kept
        log.exception("authorize: decision failed for %s", request.request_id,
                      extra={"request_id": request.request_id})
        return [Decision(request.request_id, Reason.MALFORMED_EVENT,
                         f"internal error ({type(exc).__name__})")]


async def _refetched() -> bool:
    try:
        return await asyncio.wait_for(jwks.refetch_unknown_kid(), JWKS_WAIT_S)
    except TimeoutError:
        return False
