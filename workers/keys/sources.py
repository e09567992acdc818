"""Key sources: the config file's inline keys, `file://` and `http(s)://` URLs.

`ConfigSource.poll()` re-reads the config file and, when `api_keys` names a
URL, the URL too, and returns the desired keys and policies. A source that
fails keeps its last good snapshot; an HTTP source is polled with
If-Modified-Since and a 304 keeps the current keys.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp
import yaml

from workers import settings as settings_mod
from workers.auth import secrets
from workers.auth.keys import KeyRecord
from workers.auth.policy import EventPolicy
from workers.auth.providers import Provider, ProviderError, provider_from_record
from workers.keys import jitsu
from workers.paths import cache_dir

log = logging.getLogger(__name__)
CONFIG_SOURCE = "config"


@dataclass(frozen=True)
class Snapshot:
    source: str  # the owner name written into each record's `source`
    keys: tuple[KeyRecord, ...]
    policies: dict[str, EventPolicy] = field(default_factory=dict)
    digest: str = ""
    providers: dict[str, Provider] = field(default_factory=dict)
    remove_many: bool = False  # server.api_keys_remove_many: the operator confirmed


class SourceError(RuntimeError):
    """A source could not be read. The message names the source, never a secret."""


class ConfigSource:
    def __init__(self, path: Path | None, seal: jitsu.Seal, http_timeout_s: float = 10.0) -> None:
        self.path = path
        self.seal = seal
        self.http_timeout_s = http_timeout_s
        self.last: Snapshot | None = None
        self._url: str | None = None
        self._last_modified: str | None = None
        self._payload: bytes | None = None
        self.problem: str | None = None  # why no snapshot was ever good, for /ready

    async def poll(self) -> Snapshot | None:
        """The current snapshot, or the last good one when a source fails."""
        try:
            self.last = await self._read()
        except (SourceError, settings_mod.ConfigError, jitsu.KeyConfigError,
                ProviderError) as exc:
            log.error("key source: %s; keeping the last good keys", exc)
            if self.last is None:  # no good keys at all: /ready says why
                self.problem = str(exc)
        else:
            self.problem = None
        return self.last

    async def _read(self) -> Snapshot:
        conf = settings_mod.load(self.path) if self.path else settings_mod.from_mapping({})
        value = conf.api_keys
        # The config file owns whatever its api_keys points at: switching from
        # a file to a URL replaces the keys instead of orphaning the old ones.
        source = CONFIG_SOURCE
        payload = b""
        if jitsu.is_remote(value):
            url = str(value).strip()
            payload = await self._fetch(url)
            value = parse_payload(payload, url)
        digest = hashlib.sha256(
            repr((conf.api_keys_from, value, conf.s2s_auth, conf.policies,
                  conf.jwt_providers)).encode() + payload
        ).hexdigest()
        if self.last is not None and self.last.digest == digest:
            return self.last
        keys = jitsu.parse(value, self.seal, source, conf.s2s_auth)
        if not keys and value is None and self.path is None:  # no config at all: the demo
            keys = [jitsu.default_key(default_secret(), source)]
        return Snapshot(source, tuple(keys), dict(conf.policies), digest,
                        _providers(conf.jwt_providers), conf.api_keys_remove_many)

    async def _fetch(self, url: str) -> bytes:
        if url.startswith("file://"):
            path = Path(url[len("file://"):])
            try:
                return path.read_bytes()
            except OSError as exc:
                raise SourceError(f"cannot read {path}: {exc.strerror}") from None
        if url != self._url:  # the config now names another URL: its 304s mean nothing here
            self._url, self._last_modified, self._payload = url, None, None
        headers = {"If-Modified-Since": self._last_modified} if self._last_modified else {}
        timeout = aiohttp.ClientTimeout(total=self.http_timeout_s)
        try:
            async with aiohttp.ClientSession(timeout=timeout) as session, session.get(
                url, headers=headers, allow_redirects=False
            ) as resp:
                if resp.status == 304 and self._payload is not None:
                    return self._payload
                if resp.status != 200:
                    raise SourceError(f"{display_url(url)} answered HTTP {resp.status}")
                body = await resp.read()
                # Check it parses before it replaces the last good payload.
                parse_payload(body, url)
                self._payload = body
                self._last_modified = resp.headers.get("Last-Modified")
                return body
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise SourceError(f"{display_url(url)} unreachable ({type(exc).__name__})") from None


def _providers(items: tuple[Any, ...]) -> dict[str, Provider]:
    out: dict[str, Provider] = {}
    for n, item in enumerate(items):
        if not isinstance(item, dict):
            raise ProviderError(f"jwt_providers[{n}] must be a mapping")
        provider = provider_from_record(f"jwt_providers[{n}]", item)
        if provider.id in out:
            raise ProviderError(f"jwt_providers: duplicate id {provider.id}")
        out[provider.id] = provider
    return out


def parse_payload(raw: bytes, url: str) -> Any:
    """A tokens payload as JSON (`{"tokens": [...]}`), or YAML keys for files."""
    try:
        return {"tokens": jitsu.tokens_payload(raw)}
    except jitsu.KeyConfigError:
        if not url.startswith("file://"):
            raise
    try:
        doc = yaml.safe_load(raw)
    except yaml.YAMLError:
        raise jitsu.KeyConfigError(f"{display_url(url)} is neither JSON nor YAML") from None
    if isinstance(doc, dict):
        for key in ("tokens", "api_keys"):
            if key in doc:
                return doc[key]
    return doc


def display_url(url: str) -> str:
    """A URL without user info or query, which may carry credentials."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host += f":{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def kept_secret(name: str) -> tuple[str, Path, bool]:
    """A secret generated once and kept under the cache (0600): (secret, where, new)."""
    path = cache_dir() / name
    if path.exists():
        return path.read_text().strip(), path, False
    path.parent.mkdir(parents=True, exist_ok=True)
    secret = secrets.generate()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(secret + "\n")
    return secret, path, True


def default_secret() -> str:
    """The `defaultid` key's secret: generated once, kept under the cache (0600)."""
    secret, path, new = kept_secret("defaultid.secret")
    if not new:
        return secret
    # Shown once, on first generation, as Jitsu does, but only on a terminal: a process
    # whose output is a log (a container, a service) never writes the secret there.
    if sys.stdout.isatty():
        print(f"eventguard: no config file, so no API keys; generated key `defaultid` with "
              f"secret {secret}\n            (kept in {path}; give a config with api_keys to "
              "replace it)", flush=True)
    else:
        log.warning("no config file, so no API keys: generated key `defaultid`; its secret is "
                    "in %s (0600)", path)
    return secret
