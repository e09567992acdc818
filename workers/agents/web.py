"""The worker's pages on Faust's web port: /health, /ready and /metrics.

`eventguard worker --web-port N` (or `faust -A workers.app worker`, port 6066)
serves them. Faust starts its web server before the consumer, so /ready
answers 503 while the worker joins the group and loads the key table.
"""

from __future__ import annotations

from typing import Any

from faust.types import TP
from prometheus_client.registry import CollectorRegistry

from workers.agents import nonce_log, sync_sources
from workers.agents.authorize import DECISIONS
from workers.agents.jwks_refresh import jwks
from workers.app import app, key_state
from workers.metrics import exposition
from workers.metrics.readiness import Readiness
from workers.metrics.worker import Partition, WorkerCollector


def readiness() -> Readiness:
    return Readiness(partitions_assigned=bool(_assignment()) and not app.rebalancing,
                     key_table_problem=key_state.follower.problem(),
                     nonces_caught_up=nonce_log.ready.is_set(),
                     key_source_problem=sync_sources.problem())


def _assignment() -> set[TP]:
    try:
        return set(app.consumer.assignment())
    except Exception:  # the consumer is not started yet, or is stopping
        return set()


def _highwater(tp: TP) -> int | None:
    try:
        value = app.consumer.highwater(tp)
    except Exception:  # not assigned (any more), or not fetched yet
        return None
    return int(value) if value is not None else None


class _Probe:
    """The worker's state for /metrics; read at scrape time only."""

    def keys(self) -> int:
        return len(key_state.state.keys)

    def nonces(self) -> int:
        return len(key_state.state.nonces)

    def ready(self) -> bool:
        return readiness().problem is None

    def key_table_lag(self) -> int | None:
        return key_state.follower.lag

    def key_table_stalls(self) -> int:
        return key_state.follower.stalls

    def key_table_offset(self) -> int | None:
        return key_state.follower.position

    def jwks_fetches(self) -> dict[str, int]:
        return dict(jwks.fetches)

    def partitions(self) -> list[Partition]:
        committed = getattr(app.consumer, "_committed_offset", {})
        return [Partition(tp.topic, tp.partition, _highwater(tp), committed.get(tp))
                for tp in sorted(_assignment())]

    def rebalances(self) -> int:
        return int(app.rebalancing_count)


_registry: list[CollectorRegistry] = []


def registry() -> CollectorRegistry | None:
    """Built at the first scrape: `app.monitor` is made with `app.loop`, which must not
    be read before the worker runs its loop (see faust.web.base.Web.__init__)."""
    if DECISIONS is None:
        return None
    if not _registry:
        # Faust's metrics are in its monitor's registry (workers/metrics/faust_sensor.py).
        _registry.append(exposition.registry(WorkerCollector(DECISIONS, _Probe()),
                                             base=getattr(app.monitor, "registry", None)))
    return _registry[0]


@app.page("/health")
async def health(web: Any, request: Any) -> Any:
    """The process is up and its event loop answers."""
    return web.json({"status": "ok"})


@app.page("/ready")
async def ready(web: Any, request: Any) -> Any:
    state = readiness()
    return web.json(state.body(), status=200 if state.problem is None else 503)


@app.page("/metrics")
async def metrics(web: Any, request: Any) -> Any:
    chosen = registry()
    if chosen is None:
        return web.text("metrics are off (metrics.enabled / EVENTGUARD_METRICS)\n", status=404)
    return web.bytes(exposition.render(chosen),
                     headers={"Content-Type": exposition.CONTENT_TYPE})
