"""The console's JWT provider pages: the list, add, remove, and Check.

Check fetches the provider's JWKS now (as a worker would: no redirect, 1 MiB at most)
and lists its key ids; a pasted token is verified against the provider as a worker
would verify it, showing its claims or the exact reason code. The token is neither
kept nor logged.
"""

from __future__ import annotations

import time
from urllib.parse import quote

import aiohttp
import orjson
from aiohttp import web

from workers.auth.providers import ProviderError, ProviderKey, keys_from_jwks
from workers.console.context import (
    action,
    back,
    change,
    console_of,
    field_of,
    lines_of,
    page,
    render,
)
from workers.keys import provider_admin


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/console/providers", page(providers_list))
    router.add_post("/console/providers", action(add_provider))
    router.add_get("/console/provider", page(provider_page))
    router.add_post("/console/provider/check", action(check))
    router.add_post("/console/provider/verify", action(verify))
    router.add_post("/console/provider/remove", action(remove))


def provider_url(provider_id: str) -> str:
    return f"/console/provider?id={quote(provider_id, safe='')}"


async def providers_list(request: web.Request) -> web.StreamResponse:
    state = await console_of(request).state()
    rows = [{"info": provider_admin.describe(p), "url": provider_url(p.id),
             "keys": sorted(r.id for r in state.keys.records() if p.id in r.jwt_providers)}
            for p in sorted(state.providers.values(), key=lambda p: p.id)]
    return render(request, "providers.html", rows=rows)


async def add_provider(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    providers = (await console_of(request).state()).providers
    await change(request, lambda: provider_admin.add(
        providers, field_of(form, "id"), jwks_url=field_of(form, "jwks_url"),
        public_key=field_of(form, "public_key"), audience=lines_of(form, "audience"),
        issuer=field_of(form, "issuer"), key=field_of(form, "key"), source="admin"),
        "/console/providers", provider_url(field_of(form, "id")))


async def provider_page(request: web.Request) -> web.StreamResponse:
    return await _show(request, request.query.get("id", ""), None)


async def _show(request: web.Request, provider_id: str,
                token_result: dict[str, object] | None) -> web.StreamResponse:
    console = console_of(request)
    state = await console.state()
    provider = state.providers.get(provider_id)
    if provider is None:
        return render(request, "error.html", code=404,
                      message=f"There is no JWT provider {provider_id}.")
    kids, problem = console.checks.get(provider_id, (None, None))
    return render(request, "provider.html", info=provider_admin.describe(provider),
                  url=provider_url(provider_id), kids=kids, check_problem=problem,
                  token_result=token_result,
                  keys=sorted(r.id for r in state.keys.records()
                              if provider_id in r.jwt_providers))


async def _fetched_keys(request: web.Request, provider_id: str
                        ) -> tuple[tuple[ProviderKey, ...], str | None]:
    """The provider's keys now: pasted PEMs, and its JWKS fetched at this moment."""
    console = console_of(request)
    provider = (await console.state()).providers[provider_id]
    if not provider.jwks_url:
        return provider.public_keys, None
    try:
        doc = await console.jwks_get(provider.jwks_url)
        keys = keys_from_jwks(orjson.loads(doc))
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        return provider.public_keys, f"the JWKS could not be fetched ({type(exc).__name__})"
    except (ValueError, ProviderError) as exc:
        return provider.public_keys, f"the JWKS could not be read ({exc})"
    if not keys:
        return provider.public_keys, "the JWKS has no usable signing key (RSA, EC or OKP)"
    return provider.public_keys + keys, None


async def check(request: web.Request) -> web.StreamResponse:
    console = console_of(request)
    form = await request.post()
    provider_id = field_of(form, "id")
    if provider_id not in (await console.state()).providers:
        back(request, "/console/providers", f"There is no JWT provider {provider_id}.", "error")
    keys, problem = await _fetched_keys(request, provider_id)
    console.checks[provider_id] = ([k.kid or "(no kid)" for k in keys], problem)
    back(request, provider_url(provider_id),
         problem or f"JWKS fetched: {len(keys)} keys", "error" if problem else "ok")


async def verify(request: web.Request) -> web.StreamResponse:
    """Rendered directly, not redirected: the result holds claims that are not kept."""
    console = console_of(request)
    form = await request.post()
    provider_id = field_of(form, "id")
    provider = (await console.state()).providers.get(provider_id)
    if provider is None:
        back(request, "/console/providers", f"There is no JWT provider {provider_id}.", "error")
    keys, problem = await _fetched_keys(request, provider_id)
    result = provider_admin.try_token(provider, keys, field_of(form, "token"), time.time())
    return await _show(request, provider_id, {
        "reason": result.reason.value, "detail": result.detail, "accepted": result.reason.accepted,
        "claims": orjson.dumps(result.claims, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS
                               ).decode() if result.claims else "",
        "fetch_problem": problem})


async def remove(request: web.Request) -> web.StreamResponse:
    provider_id = field_of(await request.post(), "id")
    providers = (await console_of(request).state()).providers
    await change(request, lambda: provider_admin.remove(providers, provider_id),
                 provider_url(provider_id), "/console/providers")
