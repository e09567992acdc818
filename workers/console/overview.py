"""The console's overview: decisions per second, top rejection reasons, workers ready and
their key table lag.

Decisions come from the usage process (what `eventguard keys usage` shows); readiness and
lag from each worker's /ready and /metrics (`console.worker_urls`), the numbers Prometheus
scrapes. A source that does not answer is named on the page, never guessed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web

from workers.console.context import console_of, page, render
from workers.console.key_pages import usage_of
from workers.usage.summary import WINDOW_S

TIMEOUT_S = 2.0
LAG_METRIC = "eventguard_key_table_lag"


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/console/", page(overview_page))


@dataclass(frozen=True)
class WorkerStatus:
    url: str
    ready: bool
    problem: str  # why not ready, or "" when it is
    key_table_lag: float | None


def rates(keys: Iterable[Mapping[str, Any]], now: float, minutes: int = 5
          ) -> tuple[float, float]:
    """Accepted and rejected decisions per second over the last `minutes` minutes, the
    current one (counted so far) included."""
    accepted = rejected = 0
    for row in keys:
        for pair in (row.get("series") or [])[-minutes:]:
            accepted += int(pair[0])
            rejected += int(pair[1])
    seconds = (minutes - 1) * WINDOW_S + max(1.0, now % WINDOW_S)
    return accepted / seconds, rejected / seconds


def top_reasons(keys: Iterable[Mapping[str, Any]], limit: int = 6) -> list[tuple[str, int]]:
    totals: dict[str, int] = {}
    for row in keys:
        for reason, n in (row.get("totals") or {}).items():
            if reason != "ok":
                totals[reason] = totals.get(reason, 0) + int(n)
    return sorted(totals.items(), key=lambda item: (-item[1], item[0]))[:limit]


def gauge(text: str, name: str) -> float | None:
    """The largest value of a gauge in a Prometheus text page (its samples by label)."""
    values = []
    for line in text.splitlines():
        if line.startswith(name) and line[len(name):len(name) + 1] in (" ", "{"):
            try:
                values.append(float(line.rsplit(" ", 1)[1]))
            except ValueError:
                continue
    return max(values) if values else None


async def worker_status(session: aiohttp.ClientSession, url: str) -> WorkerStatus:
    try:
        async with session.get(f"{url}/ready") as response:
            ready = response.status == 200
            body = await response.json(content_type=None) if not ready else {}
        async with session.get(f"{url}/metrics") as response:
            metrics = await response.text() if response.status == 200 else ""
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        return WorkerStatus(url, False, f"no answer ({type(exc).__name__})", None)
    why = str(body.get("reason") or body.get("error") or "not ready") if not ready else ""
    return WorkerStatus(url, ready, why, gauge(metrics, LAG_METRIC))


async def overview_page(request: web.Request) -> web.StreamResponse:
    console = console_of(request)
    timeout = aiohttp.ClientTimeout(total=TIMEOUT_S)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        (usage, problem), *workers = await asyncio.gather(
            usage_of(request, None),
            *(worker_status(session, url) for url in console.conf.worker_urls))
    keys = [row for row in usage.get("keys", []) if isinstance(row, dict)]
    accepted, rejected = rates(keys, console.clock())
    state = await console.state()
    return render(request, "overview.html", accepted=accepted, rejected=rejected,
                  reasons=top_reasons(keys), workers=workers, usage_problem=problem,
                  key_count=len(state.keys), provider_count=len(state.providers),
                  policy_count=len(state.policies))
