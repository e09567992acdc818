"""JWKS fetching for JWT providers: cached, refreshed, refetched on unknown kids.

Runs beside the decision core: it fills `state.jwks[provider_id]`, which the
core reads. A fetch never blocks the event loop (aiohttp). A failed fetch or
an unusable document keeps the last good key set. Redirects are refused. An
unknown `kid` may trigger a refetch at most once per REFETCH_EVERY_S per
provider; in between, unknown kids are rejected at once (a negative cache).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter

import aiohttp
import orjson

from workers.auth.providers import Provider, ProviderError, keys_from_jwks
from workers.auth.state import AuthState
from workers.keys.sources import display_url

log = logging.getLogger(__name__)
REFRESH_S = 300.0
REFETCH_EVERY_S = 30.0
TIMEOUT_S = 5.0
MAX_BYTES = 1024 * 1024


class JwksCache:
    def __init__(self, state: AuthState, refresh_s: float = REFRESH_S,
                 refetch_every_s: float = REFETCH_EVERY_S) -> None:
        self.state = state
        self.refresh_s = refresh_s
        self.refetch_every_s = refetch_every_s
        self._fetched_at: dict[str, float] = {}  # provider id -> monotonic time of last try
        self._url: dict[str, str] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._doc: dict[str, bytes] = {}  # the last JWKS document applied, by provider
        # Fetches by outcome (ok, unchanged, failed, no_keys, discarded), for /metrics.
        self.fetches: Counter[str] = Counter()

    async def run(self) -> None:
        """Fetch new providers' keys at once, and every provider's every `refresh_s`."""
        while True:
            for provider in list(self.state.providers.values()):
                if provider.jwks_url and self._due(provider):
                    await self.fetch(provider)
            await asyncio.sleep(0.5)

    async def refetch_unknown_kid(self) -> bool:
        """Refetch the JWKS providers not fetched within `refetch_every_s`; True if any was."""
        now = time.monotonic()
        due = [p for p in self.state.providers.values() if p.jwks_url
               and now - self._fetched_at.get(p.id, float("-inf")) >= self.refetch_every_s]
        for provider in due:
            await self.fetch(provider)
        return bool(due)

    def _due(self, provider: Provider) -> bool:
        last = self._fetched_at.get(provider.id)
        return (last is None or self._url.get(provider.id) != provider.jwks_url
                or time.monotonic() - last >= self.refresh_s)

    async def fetch(self, provider: Provider) -> None:
        assert provider.jwks_url is not None
        lock = self._locks.setdefault(provider.id, asyncio.Lock())
        async with lock:
            self._fetched_at[provider.id] = time.monotonic()
            self._url[provider.id] = provider.jwks_url
            where = f"provider {provider.id}: JWKS {display_url(provider.jwks_url)}"
            try:
                doc = await get_document(provider.jwks_url)
                if doc == self._doc.get(provider.id) and provider.id in self.state.jwks:
                    self.fetches["unchanged"] += 1
                    return  # unchanged: keep the keys and the verified-token cache
                keys = keys_from_jwks(orjson.loads(doc))
            except (aiohttp.ClientError, TimeoutError, OSError, ValueError, ProviderError) as exc:
                self.fetches["failed"] += 1
                log.warning("%s failed (%s); keeping the last good keys", where, _why(exc))
                return
            if not keys:
                self.fetches["no_keys"] += 1
                log.warning("%s has no usable signing key; keeping the last good keys", where)
                return
            current = self.state.providers.get(provider.id)
            if current is None or current.jwks_url != provider.jwks_url:
                self.fetches["discarded"] += 1  # the provider changed while it was fetched
            else:
                self.fetches["ok"] += 1
                self.state.jwks[provider.id] = keys
                self._doc[provider.id] = doc
                self.state.verified.changed()
                log.info("%s: %d keys (%s)", where, len(keys),
                         ", ".join(k.kid or "no kid" for k in keys))


async def get_document(url: str) -> bytes:
    """A JWKS document: no redirect, 1 MiB at most, HTTP 200 only."""
    timeout = aiohttp.ClientTimeout(total=TIMEOUT_S)
    async with aiohttp.ClientSession(timeout=timeout) as session, session.get(
            url, allow_redirects=False) as resp:
        if resp.status != 200:
            raise ValueError(f"HTTP {resp.status}")
        body = await resp.content.read(MAX_BYTES + 1)
        if len(body) > MAX_BYTES:
            raise ValueError("document over 1 MiB")
        return body


def _why(exc: BaseException) -> str:
    return str(exc) if isinstance(exc, ValueError | ProviderError) else type(exc).__name__
