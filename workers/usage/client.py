"""Asking a worker for usage over HTTP: `eventguard keys usage` and the admin API.

Any worker will do: Faust forwards a key id's request to the worker that owns its
partition, and the overview asks every worker.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import aiohttp

TIMEOUT_S = 15.0


class Unavailable(Exception):
    """No worker answered, or it could not answer yet (a rebalance); the message says which."""


def path(key_id: str | None) -> str:
    return "/usage/" if key_id is None else f"/usage/{quote(key_id, safe='')}/"


async def fetch(worker_url: str, key_id: str | None = None, timeout_s: float = TIMEOUT_S
                ) -> dict[str, Any]:
    """One key id's usage summary, or `{"keys": [...]}` for every key id without one."""
    url = worker_url.rstrip("/") + path(key_id)
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout_s)) as s, \
                s.get(url) as response:
            if response.status != 200:
                raise Unavailable(f"the worker at {worker_url} answered {response.status}; "
                                  "retry in a few seconds (a rebalance, or a worker starting)")
            body = await response.json(content_type=None)
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        raise Unavailable(f"no usage from a worker at {worker_url} ({type(exc).__name__}); "
                          "set worker.url (or EVENTGUARD_WORKER_URL) to a worker's web "
                          "server") from None
    if not isinstance(body, dict):
        raise Unavailable(f"the worker at {worker_url} did not answer with usage")
    return body
