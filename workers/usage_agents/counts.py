"""Per-key usage: the deltas applied to the usage tables.

The tally (usage_agents/tally.py) reads audit-log (keyed by request id) and sends a few
deltas per key id and minute to `deltas`, keyed by key id. `count_usage` applies them to
the tables `counts` and `last`, co-partitioned with `deltas`, so each key id's counts live
on the usage process that owns its partition. Faust's `group_by` would repartition every
audit record (one more record produced and consumed per decision).

Delivery is at-least-once, as for the decisions: a usage process that dies counts again
what it counted since its last offset commit (docs/operations.md, "Per-key usage").
"""

from __future__ import annotations

import logging
import time
from typing import Any, cast

import orjson
from faust.types.windows import WindowT

from workers.usage import summary
from workers.usage.tally import add_counts, later_times, parse_delta
from workers.usage_app import app, counts, deltas, last

log = logging.getLogger(__name__)
DELTAS = deltas.get_topic_name()
COUNTS = counts.table
WINDOW = cast(WindowT, COUNTS.window)
MAX_KEY_ID = 1024  # a longer table key is garbage on the deltas topic, not a key id


@app.agent(deltas)
async def count_usage(stream: Any) -> None:
    # One event at a time: Faust writes a table's changelog to the partition of the event
    # being processed, which take_events does not set.
    async for event in stream.events():
        try:
            apply_delta(event.message.key, event.message.value, time.time())
        except Exception as exc:  # a record nobody foresaw must not stop the counting
            log.error("usage: skipped a record on %s (%s)", DELTAS, type(exc).__name__,
                      exc_info=True)


def apply_delta(raw_key: bytes | None, value: bytes | None, now: float) -> None:
    delta = parse_delta(value)
    try:
        key = orjson.loads(raw_key or b"")
    except orjson.JSONDecodeError:
        key = None
    if delta is None or not isinstance(key, str) or len(key) > MAX_KEY_ID:
        log.warning("usage: skipped a record on %s that is not a usage delta", DELTAS)
        return
    if delta["start"] >= now - summary.SPAN_S - summary.WINDOW_S:  # else already expired
        window = (key, WINDOW.current(delta["start"]))
        COUNTS[window] = add_counts(as_dict(COUNTS.data.get(window)), delta["counts"])
    latest = later_times(as_dict(last.data.get(key)), delta)
    if latest is not None:
        last[key] = latest


def as_dict(value: Any) -> dict[str, Any] | None:
    # The changelogs can hold anything someone wrote to them: a value that is not a dict
    # is not one of ours, and counting starts again from nothing.
    return value if isinstance(value, dict) else None


def window_key(key: Any) -> bool:
    """Whether a table key is (key id, (start, end)), as the agent writes them."""
    return (isinstance(key, tuple) and len(key) == 2 and isinstance(key[0], str)
            and isinstance(key[1], tuple) and len(key[1]) == 2
            and all(isinstance(t, int | float) for t in key[1]))


@app.timer(60.0)
async def forget_old_windows() -> None:
    """Drop windows past the hour from this process's copy, and keys that are no windows.

    Faust expires only the windows this process wrote itself: those it recovered from the
    changelog or follows as a standby replica would stay in memory for good."""
    cutoff = time.time() - summary.SPAN_S - summary.WINDOW_S
    store = COUNTS.data
    for key in [k for k in list(store.keys()) if not window_key(k) or k[1][0] < cutoff]:
        store.pop(key, None)
        getattr(store, "_key_partition", {}).pop(key, None)


@app.task
async def _route_metadata() -> None:
    # Faust's router hashes a key with the producer's partitioner, which knows only the
    # topics this producer has metadata for: a process that never wrote the usage table
    # could not route a request for it.
    kafka = app.producer._ensure_producer()  # type: ignore[attr-defined]
    for table in (COUNTS, last):
        try:
            await kafka.client._wait_on_metadata(table.changelog_topic.get_topic_name())
        except Exception as exc:  # reading usage may fail; counting goes on
            log.warning("usage: no metadata for %s (%s); this process may not route usage "
                        "requests", table.changelog_topic.get_topic_name(), type(exc).__name__)


def local_summary(key_id: str, now: float) -> dict[str, Any]:
    data = COUNTS.data

    def window(start: float) -> dict[str, int] | None:
        value = data.get((key_id, WINDOW.current(start)))
        return value if isinstance(value, dict) else None

    seen = last.data.get(key_id)
    return summary.summary(key_id, seen if isinstance(seen, dict) else None, window, now)
