"""Asking the usage process for usage over HTTP: `eventguard keys usage` and the admin API.

Any usage process will do: Faust forwards a key id's request to the one that owns its
partition, and the overview asks every one. The usage process is `eventguard usage`
(workers/usage_app.py), not a worker: a worker no longer serves usage.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import aiohttp

TIMEOUT_S = 15.0
WHERE = "usage.url or EVENTGUARD_USAGE_URL"


class Unavailable(Exception):
    """No usage process answered, or it could not answer yet; the message says what to do."""


def path(key_id: str | None) -> str:
    return "/usage/" if key_id is None else f"/usage/{quote(key_id, safe='')}/"


async def fetch(usage_url: str, key_id: str | None = None, timeout_s: float = TIMEOUT_S
                ) -> dict[str, Any]:
    """One key id's usage summary, or `{"keys": [...]}` for every key id without one."""
    url = usage_url.rstrip("/") + path(key_id)
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout_s)) as s, \
                s.get(url) as response:
            if response.status == 404:
                raise Unavailable(f"{usage_url} serves no usage (a worker? usage is served by "
                                  f"`eventguard usage` now); set {WHERE} to the usage process")
            if response.status != 200:
                raise Unavailable(f"the usage process at {usage_url} answered "
                                  f"{response.status}; retry in a few seconds (it is starting "
                                  "or rebalancing)")
            body = await response.json(content_type=None)
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        raise Unavailable(f"no usage process answers at {usage_url} ({type(exc).__name__}); "
                          f"start it with `eventguard usage`, or set {WHERE} to where it "
                          "runs") from None
    if not isinstance(body, dict):
        raise Unavailable(f"{usage_url} did not answer with usage; set {WHERE} to the usage "
                          "process")
    return body
