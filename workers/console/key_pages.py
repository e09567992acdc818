"""The console's key pages: the list, one key, a new key, and the key actions.

Keys are addressed by a query parameter (`/console/key?id=...`), not a path segment: a
key id from auth-config may hold any character, `/` included. New secrets are shown
once, on the page a create or rotate redirects to; that page forgets them as it shows
them, so a reload shows none.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import quote

from aiohttp import web

from workers.auth.keys import KeyRecord, SecretKind
from workers.console import charts, samples
from workers.console.context import (
    action,
    back,
    change,
    console_of,
    failed,
    field_of,
    lines_of,
    page,
    publish,
    render,
    session_of,
)
from workers.keys import admin, records
from workers.usage import client as usage_client
from workers.usage import summary

USAGE_TIMEOUT_S = 3.0  # a page waits this long for the usage process, then says so
KINDS = ("client", "server", "access")


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/console/keys", page(keys_list))
    router.add_get("/console/keys/new", page(new_key))
    router.add_post("/console/keys/new", action(create_key))
    router.add_get("/console/key", page(key_page))
    router.add_get("/console/key/created", page(created))
    router.add_post("/console/key/rotate", action(rotate))
    router.add_post("/console/key/disable", action(disable))
    router.add_post("/console/key/enable", action(enable))
    router.add_post("/console/key/edit", action(edit))
    router.add_get("/console/key/revoke", page(confirm_revoke))
    router.add_post("/console/key/revoke", action(revoke))


def key_url(key_id: str, suffix: str = "") -> str:
    return f"/console/key{suffix}?id={quote(key_id, safe='')}"


def status_of(record: KeyRecord, now: float) -> str:
    if record.disabled:
        return "disabled"
    if record.expired(now):
        return "expired"
    return "enabled"


def kinds_of(record: KeyRecord) -> list[str]:
    kinds = [k.value for k in SecretKind if record.secrets_of(k)]
    return [*kinds, "access"] if record.access_key else kinds


async def usage_of(request: web.Request, key_id: str | None) -> tuple[dict[str, Any], str]:
    """The usage process's answer and "" , or {} and why there is none."""
    url = console_of(request).conf.usage_url
    try:
        return await usage_client.fetch(url, key_id, USAGE_TIMEOUT_S), ""
    except usage_client.Unavailable as exc:
        return {}, str(exc)


def matches(record: KeyRecord, q: str, status: str, kind: str, provider: str,
            now: float) -> bool:
    text = q.lower()
    return ((not text or text in record.id.lower()
             or any(text in o.lower() for o in record.origins))
            and (not status or status_of(record, now) == status)
            and (not kind or kind in kinds_of(record))
            and (not provider or provider in record.jwt_providers))


async def keys_list(request: web.Request) -> web.StreamResponse:
    console = console_of(request)
    state = await console.state()
    now = console.clock()
    q, status, kind, provider = (request.query.get(n, "").strip()
                                 for n in ("q", "status", "kind", "provider"))
    usage, problem = await usage_of(request, None)
    by_key = {row.get("key_id"): row for row in usage.get("keys", []) if isinstance(row, dict)}
    rows = []
    for record in sorted(state.keys.records(), key=lambda r: r.id):
        if not matches(record, q, status, kind, provider, now):
            continue
        use = by_key.get(record.id, {})
        series = use.get("series") or [[0, 0]] * (summary.SPAN_S // summary.WINDOW_S)
        rows.append({"record": record, "info": admin.describe(record),
                     "status": status_of(record, now), "kinds": kinds_of(record),
                     "use": use, "spark": charts.sparkline(series), "url": key_url(record.id)})
    return render(request, "keys.html", rows=rows, total=len(state.keys), usage_problem=problem,
                  filters={"q": q, "status": status, "kind": kind, "provider": provider},
                  providers=sorted(state.providers), policies=sorted(state.policies))


async def key_page(request: web.Request) -> web.StreamResponse:
    console = console_of(request)
    state = await console.state()
    key_id = request.query.get("id", "")
    record = state.keys.get(key_id)
    if record is None:
        return render(request, "error.html", code=404,
                      message=f"There is no key {key_id} (revoked, or never added).")
    usage, problem = await usage_of(request, key_id)
    now = console.clock()
    starts = [summary.iso(s) for s in summary.minute_starts(now)]
    chart = charts.per_minute(usage.get("minutes") or [], starts)
    return render(request, "key.html", record=record, info=admin.describe(record),
                  status=status_of(record, now), kinds=kinds_of(record), usage=usage,
                  usage_problem=problem, chart=chart, url=key_url(key_id),
                  owned=not records.from_config(record.source),
                  default_overlap_h=int(admin.DEFAULT_OVERLAP_S // 3600))


async def new_key(request: web.Request) -> web.StreamResponse:
    state = await console_of(request).state()
    return render(request, "new_key.html", providers=sorted(state.providers),
                  policies=sorted(state.policies))


async def create_key(request: web.Request) -> web.StreamResponse:
    console = console_of(request)
    form = await request.post()
    key_id = field_of(form, "id")
    try:
        change = admin.add(
            (await console.state()).keys, key_id, now=time.time(),
            seal=console.api.seal, source="admin", client="client" in form,
            server="server" in form, access="access" in form,
            origins=lines_of(form, "origins"), allowed_events=lines_of(form, "allowed_events"),
            jwt_providers=[str(p) for p in form.getall("jwt_providers", []) if p],
            policy=field_of(form, "policy") or None)
    except admin.KeyOpError as exc:
        failed(request, "/console/keys/new", exc)
    await publish(request, change)
    session_of(request).shown[change.upserts[0].id] = dict(change.shown)
    back(request, key_url(change.upserts[0].id, "/created"), change.message)


async def created(request: web.Request) -> web.StreamResponse:
    console = console_of(request)
    key_id = request.query.get("id", "")
    shown = session_of(request).shown.pop(key_id, None)  # once: a reload shows nothing
    record = (await console.state()).keys.get(key_id)
    examples = samples.for_key(console.ingest_url, shown or {},
                               record.origins if record else (),
                               record.jwt_providers if record else ())
    return render(request, "created.html", key_id=key_id, shown=shown, samples=examples,
                  url=key_url(key_id))


async def rotate(request: web.Request) -> web.StreamResponse:
    console = console_of(request)
    form = await request.post()
    key_id = field_of(form, "id")
    try:
        hours = float(field_of(form, "overlap_h") or admin.DEFAULT_OVERLAP_S / 3600)
        change = admin.rotate((await console.state()).keys, key_id,
                              field_of(form, "kind") or "client", now=time.time(),
                              seal=console.api.seal, overlap_s=max(0.0, hours) * 3600)
    except ValueError as exc:  # KeyOpError too
        failed(request, key_url(key_id), admin.KeyOpError(
            str(exc) if isinstance(exc, admin.KeyOpError) else "overlap must be hours"))
    await publish(request, change)
    session_of(request).shown[key_id] = dict(change.shown)
    back(request, key_url(key_id, "/created"), change.message)


async def _set_disabled(request: web.Request, disabled: bool) -> web.StreamResponse:
    key_id = field_of(await request.post(), "id")
    keys = (await console_of(request).state()).keys
    await change(request, lambda: admin.set_disabled(keys, key_id, disabled), key_url(key_id))


async def disable(request: web.Request) -> web.StreamResponse:
    return await _set_disabled(request, True)


async def enable(request: web.Request) -> web.StreamResponse:
    return await _set_disabled(request, False)


async def edit(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    key_id = field_of(form, "id")
    keys = (await console_of(request).state()).keys
    await change(request, lambda: admin.edit(
        keys, key_id, origins=lines_of(form, "origins"),
        allowed_events=lines_of(form, "allowed_events")), key_url(key_id))


async def confirm_revoke(request: web.Request) -> web.StreamResponse:
    key_id = request.query.get("id", "")
    if (await console_of(request).state()).keys.get(key_id) is None:
        return render(request, "error.html", code=404, message=f"There is no key {key_id}.")
    return render(request, "revoke.html", key_id=key_id, url=key_url(key_id))


async def revoke(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    key_id = field_of(form, "id")
    if field_of(form, "confirm") != key_id:
        back(request, key_url(key_id, "/revoke"),
             f"Type the key id {key_id} to revoke it; nothing was revoked.", "error")
    keys = (await console_of(request).state()).keys
    await change(request, lambda: admin.revoke(keys, key_id), key_url(key_id), "/console/keys")
