"""The admin listener's application: the admin API and the console, apart from the public
port (`ingest.admin_bind`, 127.0.0.1:8002 by default).

Every response here carries a strict Content-Security-Policy (no inline script or style,
no framing) and is never cached: pages show key settings, and one shows new secrets.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web

from workers.console import key_pages, overview, policy_pages, provider_pages, signin
from workers.console.context import CONSOLE, Console, templates
from workers.console.sessions import Sessions
from workers.ingest.admin import AdminAPI
from workers.ingest.admin import Wrap as CountWrap
from workers.keys.jwks import get_document
from workers.settings import Settings

STATIC = Path(__file__).parent / "static"
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def create_admin_app(api: AdminAPI, conf: Settings, ingest_url: str,
                     count: CountWrap | None = None,
                     clock: Callable[[], float] = time.time) -> web.Application:
    app = web.Application(middlewares=[_security_headers], client_max_size=256 * 1024)
    app[CONSOLE] = Console(api=api, sessions=Sessions(conf.session_idle_s), conf=conf,
                           ingest_url=ingest_url, templates=templates(), clock=clock,
                           jwks_get=get_document)
    api.add_routes(app, count)
    app.router.add_get("/", _to_console)
    for module in (signin, overview, key_pages, provider_pages, policy_pages):
        module.add_routes(app.router)
    app.router.add_static("/console/static/", STATIC, append_version=True)
    return app


async def _to_console(request: web.Request) -> web.Response:
    raise web.HTTPFound("/console/")


@web.middleware
async def _security_headers(request: web.Request,
                            handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                            ) -> web.StreamResponse:
    try:
        response = await handler(request)
    except web.HTTPException as exc:  # redirects and 404s get the headers too
        exc.headers.update(HEADERS)
        raise
    response.headers.update(HEADERS)
    return response
