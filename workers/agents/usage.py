"""Per-key usage: the usage tables, fed from audit-log, and served over HTTP.

The tally (workers/agents/usage_tally.py) reads audit-log (keyed by request id) and sends
a few deltas per key id and minute to `usage_deltas`, keyed by key id. `count_usage`
applies them to the usage tables, co-partitioned with `usage_deltas`, so each key id's
counts live on the worker that owns its partition. Faust's `group_by` would repartition
every audit record (one more record produced and consumed per decision).

Delivery is at-least-once, as for the decisions: a worker that dies counts again what it
counted since its last offset commit (docs/operations.md, "Per-key usage").
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, cast

import aiohttp
import orjson
from faust.types.windows import WindowT
from faust.web.exceptions import ServiceUnavailable
from yarl import URL

from workers.app import app, config, usage_counts, usage_deltas, usage_last
from workers.usage import summary
from workers.usage.tally import add_counts, later_times, parse_delta

log = logging.getLogger(__name__)
DELTAS = usage_deltas.get_topic_name()
COUNTS = usage_counts.table
WINDOW = cast(WindowT, COUNTS.window)
PEER_TIMEOUT_S = 5.0
MAX_KEY_ID = 1024  # a longer table key is garbage on the deltas topic, not a key id


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
        COUNTS[window] = add_counts(_dict(COUNTS.data.get(window)), delta["counts"])
    last = later_times(_dict(usage_last.data.get(key)), delta)
    if last is not None:
        usage_last[key] = last


def _dict(value: Any) -> dict[str, Any] | None:
    # The changelogs can hold anything someone wrote to them: a value that is not a dict
    # is not one of ours, and counting starts again from nothing.
    return value if isinstance(value, dict) else None


def _window_key(key: Any) -> bool:
    """Whether a table key is (key id, (start, end)), as the agent writes them."""
    return (isinstance(key, tuple) and len(key) == 2 and isinstance(key[0], str)
            and isinstance(key[1], tuple) and len(key[1]) == 2
            and all(isinstance(t, int | float) for t in key[1]))


async def forget_old_windows() -> None:
    """Drop windows past the hour from this worker's copy, and keys that are no windows.

    Faust expires only the windows this worker wrote itself: those it recovered from the
    changelog or follows as a standby replica would stay in memory for good."""
    cutoff = time.time() - summary.SPAN_S - summary.WINDOW_S
    store = COUNTS.data
    for key in [k for k in list(store.keys()) if not _window_key(k) or k[1][0] < cutoff]:
        store.pop(key, None)
        getattr(store, "_key_partition", {}).pop(key, None)


if config.usage:  # `worker.usage: false` saves a worker the counting
    app.agent(usage_deltas)(count_usage)
    app.timer(60.0)(forget_old_windows)


@app.task
async def _route_metadata() -> None:
    # Faust's router hashes a key with the producer's partitioner, which knows only the
    # topics this producer has metadata for: a worker that never wrote the usage table
    # could not route a request for it.
    kafka = app.producer._ensure_producer()  # type: ignore[attr-defined]
    for table in (COUNTS, usage_last):
        try:
            await kafka.client._wait_on_metadata(table.changelog_topic.get_topic_name())
        except Exception as exc:  # reading usage may fail; deciding must not
            log.warning("usage: no metadata for %s (%s); this worker may not route usage "
                        "requests", table.changelog_topic.get_topic_name(), type(exc).__name__)


def local_summary(key_id: str, now: float) -> dict[str, Any]:
    data = COUNTS.data

    def window(start: float) -> dict[str, int] | None:
        value = data.get((key_id, WINDOW.current(start)))
        return value if isinstance(value, dict) else None

    last = usage_last.data.get(key_id)
    return summary.summary(key_id, last if isinstance(last, dict) else None, window, now)


def _owned(key_id: str) -> bool:
    try:
        owner = app.router.key_store(COUNTS.name, key_id)
    except (KeyError, TypeError):
        return False
    return _ident(owner) == _ident(URL(str(app.conf.canonical_url)))


def _ident(url: URL) -> tuple[str, int]:
    return url.host or "", int(url.port or 80)


def local_overview(now: float) -> list[dict[str, Any]]:
    keys = {k for k in list(usage_last.data.keys()) if isinstance(k, str)}
    keys.update(k[0] for k in list(COUNTS.data.keys()) if _window_key(k))
    return summary.overview(local_summary(k, now) for k in keys if _owned(k))


@app.page("/usage/{key_id}/")
@app.table_route(table=COUNTS, match_info="key_id")
async def usage_of_key(web: Any, request: Any, key_id: str) -> Any:
    """One key id's usage, from the worker that owns its partition (Faust forwards)."""
    return web.json(local_summary(key_id, time.time()))


@app.page("/usage/")
async def usage_overview(web: Any, request: Any) -> Any:
    """Every key id's usage over the last hour: this worker's keys with `?local=1`,
    else every worker's, asked in turn."""
    now = time.time()
    if request.query.get("local"):
        return web.json({"keys": local_overview(now)})
    peers = [URL(str(url)) for url in app.router.table_metadata(COUNTS.name)]
    me = _ident(URL(str(app.conf.canonical_url)))
    found = local_overview(now)
    others = [p for p in peers if _ident(p) != me]
    answers = await asyncio.gather(*(_peer_overview(p) for p in others), return_exceptions=True)
    for peer, answer in zip(others, answers, strict=True):
        if isinstance(answer, BaseException):
            log.warning("usage: worker %s did not answer (%s)", peer, type(answer).__name__)
            raise ServiceUnavailable()
        found.extend(answer)
    return web.json({"keys": summary.overview(found)})


async def _peer_overview(peer: URL) -> list[dict[str, Any]]:
    url = peer.with_path("/usage/").with_query(local="1")
    timeout = aiohttp.ClientTimeout(total=PEER_TIMEOUT_S)
    async with app.http_client.get(url, timeout=timeout) as response:
        response.raise_for_status()
        return list((await response.json())["keys"])

