"""Signing in to the console with the admin token, and out.

The token is typed once, into a form (never a URL); the answer is a session cookie:
HttpOnly, SameSite=Strict, Secure over TLS, ended by sign-out or inactivity. A wrong
token and a missing one get the same answer through the same code; attempts share the
admin API's brake per client address.
"""

from __future__ import annotations

import logging
import secrets as random

from aiohttp import web

from workers.auth import secrets
from workers.console.context import COOKIE, action, console_of, field_of, render

log = logging.getLogger(__name__)
PRE_COOKIE = "eg_signin"  # the sign-in form's CSRF token, double-submitted


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/console/sign-in", show)
    router.add_post("/console/sign-in", sign_in)
    router.add_post("/console/sign-out", action(sign_out))


async def show(request: web.Request, status: int = 200, message: str = "") -> web.Response:
    console = console_of(request)
    off = console.api.token_digest is None
    token = random.token_urlsafe(24)
    response = render(request, "signin.html", code=status, message=message, off=off,
                      signin_csrf=token)
    response.set_cookie(PRE_COOKIE, token, httponly=True, samesite="Strict",
                        secure=request.secure, path="/console/sign-in")
    return response


async def sign_in(request: web.Request) -> web.Response:
    console = console_of(request)
    api = console.api
    form = await request.post()
    sent = field_of(form, "csrf")
    expected = request.cookies.get(PRE_COOKIE, "")
    if not sent or not secrets.same(secrets.digest(sent), secrets.digest(expected)):
        return web.Response(status=403, text="403: the sign-in form's CSRF token is missing "
                            "or wrong; reload the sign-in page\n")
    if api.token_digest is None:
        return await show(request, 403)
    address = request.remote or "unknown"
    wait = api.braked_s(address)
    if wait is not None:
        response = await show(request, 429, "Too many wrong admin tokens from this address; "
                                             f"retry in {wait} s.")
        response.headers["Retry-After"] = str(wait)
        return response
    if not api.token_ok(field_of(form, "token"), address, "console"):
        return await show(request, 401, "That is not the admin token (server.admin_token).")
    cookie, _ = console.sessions.start(console.clock())
    log.info("console: signed in from %s", address)
    response = web.HTTPSeeOther("/console/")
    response.set_cookie(COOKIE, cookie, httponly=True, samesite="Strict",
                        secure=request.secure, path="/")
    response.del_cookie(PRE_COOKIE, path="/console/sign-in")
    raise response


async def sign_out(request: web.Request) -> web.Response:
    console_of(request).sessions.end(request.cookies.get(COOKIE))
    response = web.HTTPSeeOther("/console/sign-in")
    response.del_cookie(COOKIE, path="/")
    raise response
