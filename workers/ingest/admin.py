"""The admin HTTP API (`/api/v1/admin/...`): the `eventguard keys` operations over HTTP.

It listens on the admin listener (`ingest.admin_bind`), never on the public port. Every
call needs `server.admin_token` in the header `X-Admin-Token`; never in the URL, which
ends up in logs and browser history (a `token` query parameter is refused, 400).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import orjson
from aiohttp import web
from aiokafka.errors import KafkaError

from workers import typos
from workers.auth import secrets
from workers.auth.authorize import AuthState
from workers.ingest.admin_failures import AdminFailures
from workers.ingest.responses import error, json
from workers.keys import admin
from workers.keys.admin import Change
from workers.usage import client as usage_client

PREFIX = "/api/v1/admin"
log = logging.getLogger(__name__)
READY_TIMEOUT_S = 10.0


class Store(Protocol):
    @property
    def state(self) -> AuthState: ...
    async def follow(self) -> None: ...
    async def publish(self, change: Change) -> None: ...


Handler = Callable[["AdminAPI", web.Request], Awaitable[web.Response]]
# (route pattern, handler) -> the handler to register (the server's request counter)
Wrap = Callable[[str, Callable[[web.Request], Awaitable[web.StreamResponse]]],
                Callable[[web.Request], Awaitable[web.StreamResponse]]]


class AdminAPI:
    def __init__(self, store: Store, admin_token: str | None, seal: Callable[[str], str],
                 usage_url: str | None = None) -> None:
        self.store = store
        self.usage_url = usage_url  # usage is read from the usage process's web server
        self.token_digest = secrets.digest(admin_token) if admin_token else None
        self.failures = AdminFailures()
        self.seal = seal
        self._following: asyncio.Task[None] | None = None

    def add_routes(self, app: web.Application, wrap: Wrap | None = None) -> None:
        """The admin routes; `wrap(route pattern, handler)` may count them (server.py)."""
        for method, path, handler in (
            ("GET", "/keys", AdminAPI.list_keys), ("POST", "/keys", AdminAPI.add),
            ("GET", "/keys/{id}", AdminAPI.show), ("DELETE", "/keys/{id}", AdminAPI.revoke),
            ("POST", "/keys/{id}/rotate", AdminAPI.rotate),
            ("POST", "/keys/{id}/disable", AdminAPI.disable),
            ("POST", "/keys/{id}/enable", AdminAPI.enable),
            ("POST", "/keys/{id}/check", AdminAPI.check),
            ("POST", "/secrets", AdminAPI.gen),
            ("GET", "/keys/{id}/usage", AdminAPI.usage), ("GET", "/usage", AdminAPI.usage),
        ):
            guarded: Any = self._guarded(handler)
            app.router.add_route(method, PREFIX + path,
                                 wrap(PREFIX + path, guarded) if wrap else guarded)

    def _guarded(self, handler: Handler) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def run(request: web.Request) -> web.Response:
            if self.token_digest is None:
                return error(403, "the admin API is off; set server.admin_token in the config")
            address = request.remote or "unknown"
            wait = self.braked_s(address)
            if wait is not None:
                return error(429, "too many wrong admin tokens from this address; retry later",
                             {"Retry-After": str(wait)})
            if "token" in request.query:
                return error(400, "send the admin token in the X-Admin-Token header, never "
                                  "in the URL (URLs end up in logs)")
            if not self.token_ok(request.headers.get("X-Admin-Token") or "", address,
                                 "admin API"):
                return error(401, "admin token missing or wrong (header X-Admin-Token)")
            try:
                return await handler(self, request)
            except admin.KeyOpError as exc:
                return error(exc.status, str(exc))
            except (TimeoutError, KafkaError, OSError):
                return error(503, "Kafka is unavailable; no key was changed, retry later",
                              {"Retry-After": "5"})
        return run

    def braked_s(self, address: str) -> int | None:
        """Seconds until `address` may try the admin token again; None: it may now."""
        wait = self.failures.wait_s(address)
        return None if wait is None else max(1, math.ceil(wait))

    def token_ok(self, given: str, address: str, where: str) -> bool:
        """Whether `given` is the admin token. A wrong or missing one takes the same path
        and counts against the address (the API and the console share one brake); only
        the first failure and the start of the brake are logged, never a token."""
        right = self.token_digest is not None and secrets.same(secrets.digest(given),
                                                               self.token_digest)
        if right and given:
            return True
        count = self.failures.failed(address)
        if count in (1, self.failures.limit):
            log.warning("%s: %d wrong or missing admin token(s) from %s in %.0f s%s", where,
                        count, address, self.failures.window_s,
                        "; refusing it with 429 for a while"
                        if count == self.failures.limit else "")
        return False

    async def keys(self) -> Any:
        """The keys as auth-config holds them now (followed in the background)."""
        if self._following is None or (self._following.done()
                                       and self._following.exception() is not None):
            self._following = asyncio.ensure_future(self.store.follow())
        await asyncio.wait_for(asyncio.shield(self._following), READY_TIMEOUT_S)
        return self.store.state.keys

    async def publish(self, change: Change) -> None:
        """Write a change to auth-config, or TimeoutError when Kafka does not take it soon."""
        await asyncio.wait_for(self.store.publish(change), READY_TIMEOUT_S)

    async def _publish(self, change: Change, status: int = 200) -> web.Response:
        await self.publish(change)
        keys = self.store.state.keys
        body: dict[str, Any] = {"status": "ok", "message": change.message}
        changed = [keys.get(r.id) for r in change.upserts]
        body["keys"] = [admin.describe(r) for r in changed if r is not None]
        if change.shown:
            body["secrets"] = change.shown  # shown once, to the operator who asked
        return json(body, status)

    async def list_keys(self, request: web.Request) -> web.Response:
        keys = await self.keys()
        return json({"keys": [admin.describe(r) for r in sorted(keys.records(),
                                                                   key=lambda r: r.id)]})

    async def show(self, request: web.Request) -> web.Response:
        record = (await self.keys()).get(request.match_info["id"])
        if record is None:
            raise admin.NoSuchKey(f"no key {request.match_info['id']}")
        return json(admin.describe(record))

    async def add(self, request: web.Request) -> web.Response:
        body = await _body(request, ADD_FIELDS)
        change = admin.add(
            await self.keys(), _str(body, "id"), now=time.time(), seal=self.seal,
            source="admin", client=body.get("client") is True, server=body.get("server") is True,
            access=body.get("access") is True, origins=_strs(body, "origins"),
            allowed_events=_strs(body, "allowed_events"),
            jwt_providers=_strs(body, "jwt_providers"), policy=body.get("policy") or None)
        return await self._publish(change, 201)

    async def rotate(self, request: web.Request) -> web.Response:
        body = await _body(request, ROTATE_FIELDS)
        overlap = body.get("overlap_s", admin.DEFAULT_OVERLAP_S)
        if not isinstance(overlap, int | float) or isinstance(overlap, bool):
            raise admin.KeyOpError("overlap_s must be a number of seconds")
        change = admin.rotate(await self.keys(), request.match_info["id"],
                              str(body.get("kind") or "client"), now=time.time(),
                              seal=self.seal, overlap_s=float(overlap))
        return await self._publish(change)

    async def revoke(self, request: web.Request) -> web.Response:
        return await self._publish(admin.revoke(await self.keys(), request.match_info["id"]))

    async def disable(self, request: web.Request) -> web.Response:
        return await self._publish(
            admin.set_disabled(await self.keys(), request.match_info["id"], True))

    async def enable(self, request: web.Request) -> web.Response:
        return await self._publish(
            admin.set_disabled(await self.keys(), request.match_info["id"], False))

    async def check(self, request: web.Request) -> web.Response:
        body = await _body(request, frozenset({"secret"}))
        reason, detail = admin.check(await self.keys(), request.match_info["id"],
                                     _str(body, "secret"), time.time())
        return json({"valid": reason.accepted, "reason": reason.value, "detail": detail})

    async def usage(self, request: web.Request) -> web.Response:
        """A key id's usage (`/keys/{id}/usage`), or every key id's (`/usage`), as the usage
        process counts it: the ingest only relays (it does not know the usage process)."""
        if not self.usage_url:
            return error(503, f"no usage URL; set {usage_client.WHERE}")
        try:
            body = await usage_client.fetch(self.usage_url, request.match_info.get("id"))
        except usage_client.Unavailable as exc:
            return error(503, str(exc), {"Retry-After": "5"})
        return json(body)

    async def gen(self, request: web.Request) -> web.Response:
        return json({"secret": secrets.generate()})


ADD_FIELDS = frozenset({"id", "client", "server", "access", "origins", "allowed_events",
                        "jwt_providers", "policy"})
ROTATE_FIELDS = frozenset({"kind", "overlap_s"})


async def _body(request: web.Request, known: frozenset[str]) -> dict[str, Any]:
    raw = await request.read()
    try:
        doc = orjson.loads(raw) if raw.strip() else {}
    except orjson.JSONDecodeError:
        raise admin.KeyOpError("body must be a JSON object") from None
    if not isinstance(doc, dict):
        raise admin.KeyOpError("body must be a JSON object")
    typo = typos.unknown_field(doc, known)  # `origin` would add a key open to any Origin
    if typo is not None:
        raise admin.KeyOpError(typo)
    return doc


def _str(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value.strip():
        raise admin.KeyOpError(f"`{name}` must be a non-empty string")
    return value


def _strs(body: dict[str, Any], name: str) -> list[str]:
    value = body.get(name) or []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise admin.KeyOpError(f"`{name}` must be a list of strings")
    return value
