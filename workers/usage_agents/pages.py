"""The usage process's web server: per-key usage, /health, /ready and /metrics.

`eventguard usage` serves them on `--web-port` or `usage.web_port` (6067). Faust starts
its web server before the consumer, so /ready answers 503 while the process joins its
group, recovers the usage tables and reads the key table's changelog.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import aiohttp
from faust.web.exceptions import ServiceUnavailable
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector, CollectorRegistry
from yarl import URL

from workers.metrics import exposition, families
from workers.usage import summary
from workers.usage_agents.counts import COUNTS, local_summary, window_key
from workers.usage_app import app, config, known_keys, last

log = logging.getLogger(__name__)
PEER_TIMEOUT_S = 5.0


def _owned(key_id: str) -> bool:
    try:
        owner = app.router.key_store(COUNTS.name, key_id)
    except (KeyError, TypeError):
        return False
    return _ident(owner) == _ident(URL(str(app.conf.canonical_url)))


def _ident(url: URL) -> tuple[str, int]:
    return url.host or "", int(url.port or 80)


def local_overview(now: float) -> list[dict[str, Any]]:
    keys = {k for k in list(last.data.keys()) if isinstance(k, str)}
    keys.update(k[0] for k in list(COUNTS.data.keys()) if window_key(k))
    return summary.overview(local_summary(k, now) for k in keys if _owned(k))


@app.page("/usage/{key_id}/")
@app.table_route(table=COUNTS, match_info="key_id")
async def usage_of_key(web: Any, request: Any, key_id: str) -> Any:
    """One key id's usage, from the usage process that owns its partition (Faust forwards)."""
    return web.json(local_summary(key_id, time.time()))


@app.page("/usage/")
async def usage_overview(web: Any, request: Any) -> Any:
    """Every key id's usage over the last hour: this process's keys with `?local=1`,
    else every usage process's, asked in turn."""
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
            log.warning("usage: usage process %s did not answer (%s)", peer,
                        type(answer).__name__)
            raise ServiceUnavailable()
        found.extend(answer)
    return web.json({"keys": summary.overview(found)})


async def _peer_overview(peer: URL) -> list[dict[str, Any]]:
    url = peer.with_path("/usage/").with_query(local="1")
    timeout = aiohttp.ClientTimeout(total=PEER_TIMEOUT_S)
    async with app.http_client.get(url, timeout=timeout) as response:
        response.raise_for_status()
        return list((await response.json())["keys"])


def _assignment() -> set[Any]:
    try:
        return set(app.consumer.assignment())
    except Exception:  # the consumer is not started yet, or is stopping
        return set()


def problem() -> str | None:
    """Why this process cannot serve usage yet (None: it can), in start-up order."""
    if not _assignment() or app.rebalancing:
        return "waiting for partitions (joining the group or rebalancing)"
    if not known_keys.ready.is_set():
        return "reading the key table's changelog"
    return None


@app.page("/health")
async def health(web: Any, request: Any) -> Any:
    """The process is up and its event loop answers."""
    return web.json({"status": "ok"})


@app.page("/ready")
async def ready(web: Any, request: Any) -> Any:
    why = problem()
    if why is None:
        return web.json({"status": "ok"})
    return web.json({"status": "not ready", "reason": why}, status=503)


class _UsageCollector(Collector):
    def collect(self) -> Iterator[Metric]:
        yield families.gauge("eventguard_usage_ready", "1 when the usage process's /ready "
                             "answers 200", 1 if problem() is None else 0)
        yield families.gauge("eventguard_usage_known_keys",
                             "Key ids the usage process knows from the key table's changelog",
                             len(known_keys.state.keys))
        by_topic = Counter(tp.topic for tp in _assignment())
        yield families.labelled_gauge(
            "eventguard_assigned_partitions",
            "Partitions assigned to this usage process, by topic (deltas and table changelogs)",
            ("topic",), (((topic,), n) for topic, n in sorted(by_topic.items())))
        yield families.plain_counter("eventguard_usage_rebalances",
                                     "Rebalances this usage process took part in",
                                     int(app.rebalancing_count))


_registry: list[CollectorRegistry] = []


@app.page("/metrics")
async def metrics(web: Any, request: Any) -> Any:
    if not config.metrics_enabled:
        return web.text("metrics are off (metrics.enabled / EVENTGUARD_METRICS)\n", status=404)
    if not _registry:  # at the first scrape: app.monitor needs the running loop
        _registry.append(exposition.registry(_UsageCollector(),
                                             base=getattr(app.monitor, "registry", None)))
    return web.bytes(exposition.render(_registry[0]),
                     headers={"Content-Type": exposition.CONTENT_TYPE})
