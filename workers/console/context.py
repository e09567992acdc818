"""What every console page shares: the Console object, templates, the session and CSRF
guards, and how a change is published and answered.

A page needs a live session (else it redirects to sign-in); a POST also needs the
session's CSRF token (else 403, and nothing changes). A change goes through the admin
API's store, the same path as `eventguard keys`: auth-config records, no state here.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, NoReturn
from urllib.parse import quote

import jinja2
from aiohttp import web
from aiokafka.errors import KafkaError

from workers.auth.authorize import AuthState
from workers.console.sessions import Session, Sessions, csrf_ok
from workers.ingest.admin import AdminAPI
from workers.keys import admin
from workers.keys.admin import Change
from workers.settings import Settings

log = logging.getLogger(__name__)
COOKIE = "eg_console"
SESSION = web.RequestKey("session", Session)  # the request's Session
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Console:
    api: AdminAPI
    sessions: Sessions
    conf: Settings
    ingest_url: str  # the public ingest, for code samples
    templates: jinja2.Environment
    clock: Callable[[], float]
    jwks_get: Callable[[str], Awaitable[bytes]]
    # The last JWKS check per provider id, shown on its page: (kids, problem)
    checks: dict[str, tuple[list[str], str | None]] = field(default_factory=dict)

    async def state(self) -> AuthState:
        """auth-config as it is now (the admin API's view, followed in the background)."""
        await self.api.keys()
        return self.api.store.state


CONSOLE = web.AppKey("console", Console)


def templates() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.PackageLoader("workers.console", "templates"),
                             autoescape=True, undefined=jinja2.StrictUndefined)
    env.filters["q"] = lambda value: quote(str(value), safe="")
    return env


def console_of(request: web.Request) -> Console:
    return request.app[CONSOLE]


def session_of(request: web.Request) -> Session:
    return request[SESSION]


def _signed_in(request: web.Request) -> Session:
    """The request's live session; without one, the answer is the sign-in page."""
    console = console_of(request)
    session = console.sessions.get(request.cookies.get(COOKIE), console.clock())
    if session is None:
        raise web.HTTPSeeOther("/console/sign-in")
    return session


def page(handler: Handler) -> Handler:
    """A page for a signed-in operator; anyone else is sent to sign in."""
    async def run(request: web.Request) -> web.StreamResponse:
        request[SESSION] = _signed_in(request)
        return await _kafka_said(request, handler)
    return run


def action(handler: Handler) -> Handler:
    """A state-changing POST: a live session and its CSRF token, else nothing happens.
    Kafka being down is said on a page, and nothing was changed."""
    async def run(request: web.Request) -> web.StreamResponse:
        session = _signed_in(request)
        form = await request.post()
        sent = form.get("csrf") or request.headers.get("X-CSRF-Token")
        if not csrf_ok(session, sent if isinstance(sent, str) else None):
            return web.Response(status=403, text="403: the form's CSRF token is missing or "
                                "wrong; reload the page and send it again\n")
        request[SESSION] = session
        return await _kafka_said(request, handler)
    return run


async def _kafka_said(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The page, or a 503 page when auth-config cannot be read or written in time."""
    try:
        return await handler(request)
    except (TimeoutError, KafkaError, OSError) as exc:
        log.warning("console: Kafka unavailable for %s (%s)", request.path, type(exc).__name__)
        return render(request, "error.html", code=503,
                      message="Kafka is unavailable; nothing was changed. Retry in a few "
                              "seconds.")


def render(request: web.Request, template: str, code: int = 200,
           **context: Any) -> web.Response:
    console = console_of(request)
    session: Session | None = request.get(SESSION)
    flash = list(session.flash) if session else []
    if session:
        session.flash.clear()
    html = console.templates.get_template(template).render(
        csrf=session.csrf if session else "", flash=flash, path=request.path, **context)
    return web.Response(text=html, status=code, content_type="text/html")


def back(request: web.Request, location: str, message: str, level: str = "ok") -> NoReturn:
    """Answer a form: a message for the next page, and there (POST-redirect-GET)."""
    session_of(request).flash.append((level, message))
    raise web.HTTPSeeOther(location)


async def publish(request: web.Request, change: Change) -> None:
    await console_of(request).api.publish(change)


def field_of(form: Any, name: str) -> str:
    value = form.get(name, "")
    return value.strip() if isinstance(value, str) else ""


def lines_of(form: Any, name: str) -> list[str]:
    """A textarea or comma list: one item per line or comma."""
    return [item.strip() for item in field_of(form, name).replace(",", "\n").splitlines()
            if item.strip()]


def failed(request: web.Request, location: str, exc: admin.KeyOpError) -> NoReturn:
    back(request, location, str(exc), "error")


async def change(request: web.Request, make: Callable[[], Change], where: str,
                 then: str | None = None) -> NoReturn:
    """Make a change, publish it and go `then` (else back `where`) with its message; a
    change that cannot be made goes back `where` with why, and nothing is published."""
    try:
        made = make()
    except admin.KeyOpError as exc:
        failed(request, where, exc)
    await publish(request, made)
    back(request, then or where, made.message)
