"""The console end to end, in Chromium, on the real broker (issue 20).

One operator's session, in order: sign in; create a key and copy its secrets from the
page; send events with it over HTTP and see each decision on audit-log and then on the
key's page (counts, chart, sparkline, last rejections); rotate; disable; edit origins;
add a JWT provider, Check it, verify pasted tokens; edit a policy; revoke and see the
next event refused; sign out. axe-core runs on every page on the way.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import re
import time
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import aiohttp
import jwt as pyjwt
import orjson
from playwright.sync_api import Page, expect

from tests.browser.conftest import (
    ISSUER,
    JWKS_KEY,
    Console,
    serious_violations,
    shot,
    sign_in,
)
from workers.cli.decisions import Collector

T = TypeVar("T")
SHOP = "https://www.shop.test"
EVIL = "https://evil.test"
PARTNER = "https://partner.test"
KEY = "shop-web"


def off_loop(make: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine in a thread of its own: Playwright's sync API owns this thread's
    event loop."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(lambda: asyncio.run(make())).result(timeout=120)


def decide(console: Console, path: str, event: dict[str, Any], headers: dict[str, str]
           ) -> str:
    """POST one event to the public ingest; the reason its decision gives, read back from
    accepted-events or rejected-events and audit-log."""
    async def go() -> str:
        async with Collector(console.bootstrap, prefix=console.prefix) as col:
            async with aiohttp.ClientSession() as s, s.post(
                    console.ingest + path, data=orjson.dumps(event),
                    headers={"Content-Type": "application/json", **headers}) as r:
                assert r.status == 200, await r.text()
                request_id = (await r.json())["request_id"]
            got = await asyncio.wait_for(col.decision(request_id), 60)
            [audit] = got["audit-log"]
            topic = "accepted-events" if audit["reason"] == "ok" else "rejected-events"
            assert len(got[topic]) == 1, got
            return str(audit["reason"])
    return off_loop(go)


def browser_event(console: Console, secret: str, origin: str = SHOP,
                  event_type: str = "page") -> str:
    return decide(console, "/api/v1/event", {"event_type": event_type},
                  {"X-Auth-Token": secret, "Origin": origin})


def accessible(page: Page, name: str) -> None:
    found = serious_violations(page)
    assert found == [], f"{name}: {found}"


def counts_on_key_page(page: Page) -> dict[str, int]:
    spans = page.locator("figcaption .count")
    return {spans.nth(i).get_attribute("data-reason") or "": int(spans.nth(i).inner_text())
            for i in range(spans.count())}


def wait_for_counts(page: Page, url: str, want: dict[str, int], timeout_s: float = 90) -> None:
    """Reload the key's page until the usage side has counted what was sent."""
    deadline = time.monotonic() + timeout_s
    seen: dict[str, int] = {}
    while time.monotonic() < deadline:
        page.goto(url)
        seen = counts_on_key_page(page)
        if all(seen.get(reason, 0) >= n for reason, n in want.items()):
            return
        time.sleep(1)
    raise AssertionError(f"the key page shows {seen}, not {want}")


def token(**claims: Any) -> str:
    payload = {"iss": ISSUER, "aud": "api", "sub": "user-42", "exp": time.time() + 300,
               **claims}
    return pyjwt.encode(payload, JWKS_KEY, algorithm="RS256", headers={"kid": "console-k1"})


def test_an_operator_manages_a_key_end_to_end(console: Console, page: Page) -> None:
    # Sign in: a wrong token first, then the right one.
    page.goto(console.admin + "/console/keys")
    expect(page).to_have_url(re.compile(r"/console/sign-in$"))
    accessible(page, "sign-in")
    shot(page, "sign-in")
    sign_in(page, console, token="not-the-admin-token")
    expect(page.locator("p.flash.error")).to_contain_text("not the admin token")
    sign_in(page, console)
    expect(page.locator("h1")).to_have_text("Overview")

    # Create a key; its secrets are on the page once.
    page.click("text=Keys")
    page.click("text=New key")
    accessible(page, "new key")
    page.fill("#id", KEY)
    page.check("input[name=server]")
    page.fill("#origins", "*.shop.test")
    page.click("button:has-text('Create key')")
    expect(page.locator("h1")).to_contain_text(KEY)
    client = page.inner_text("#secret-client_secret")
    server = page.inner_text("#secret-server_secret")
    assert len(client) >= 40 and len(server) >= 40 and client != server
    samples = page.inner_text("main")
    assert "jitsuClient" in samples and "/api/v1/s2s/event" in samples
    accessible(page, "secrets shown once")
    shot(page, "key-created")
    page.reload()
    expect(page.locator("main")).to_contain_text("shown once and are gone")
    assert client not in page.content() and server not in page.content()

    # Events with it: accepted from the shop, refused from elsewhere; each read back from
    # audit-log, then counted on the key's page.
    assert _eventually(lambda: browser_event(console, client), "ok")  # the key has arrived
    for _ in range(4):
        assert browser_event(console, client) == "ok"
    assert decide(console, "/api/v1/s2s/event", {"event_type": "track"},
                  {"X-Auth-Token": server}) == "ok"
    for _ in range(3):
        assert browser_event(console, client, origin=EVIL, event_type="signup") == \
            "origin_not_allowed"
    key_url = f"{console.admin}/console/key?id={KEY}"
    wait_for_counts(page, key_url, {"ok": 6, "origin_not_allowed": 3})
    rows = page.locator("#rejections tbody tr")
    expect(rows).to_have_count(3)
    assert "origin_not_allowed" in rows.first.inner_text()
    assert EVIL in rows.first.inner_text() and "signup" in rows.first.inner_text()
    assert page.locator("#chart rect").count() >= 1
    assert page.inner_text("#last-accepted").startswith("20")  # a time, not a dash
    accessible(page, "key page")
    shot(page, "key")
    page.goto(f"{console.admin}/console/keys")
    row = page.locator("#keys tbody tr", has_text=KEY)
    expect(row).to_contain_text("client, server")
    rejected_line = row.locator("svg.spark polyline").nth(1).get_attribute("points") or ""
    assert len({p.split(",")[1] for p in rejected_line.split()}) > 1  # not a flat line
    accessible(page, "keys")
    shot(page, "keys")

    # Rotate the client secret with no overlap: the new one works, the old one stops.
    page.goto(key_url)
    page.select_option("#kind", "client")
    page.fill("#overlap_h", "0")
    page.click("button:has-text('Rotate')")
    new_client = page.inner_text("#secret-client_secret")
    assert new_client != client
    assert _eventually(lambda: browser_event(console, new_client), "ok")
    assert browser_event(console, client) == "key_expired"
    page.goto(key_url)
    facts = page.inner_text("dl.facts")
    assert re.search(r"Rotated\s+20\d\d-", facts), facts

    # Disable, then enable.
    page.click("button:has-text('Disable')")
    expect(page.locator("#key-status")).to_have_text("disabled")
    assert _eventually(lambda: browser_event(console, new_client), "key_disabled")
    page.click("button:has-text('Enable')")
    expect(page.locator("#key-status")).to_have_text("enabled")
    assert _eventually(lambda: browser_event(console, new_client), "ok")

    # Edit the origins: the partner's site is allowed from now on.
    assert browser_event(console, new_client, origin=PARTNER) == "origin_not_allowed"
    page.fill("#edit-origins", "*.shop.test\npartner.test")
    page.click("button:has-text('Save')")
    expect(page.locator("p.flash")).to_contain_text("origins and allowed events saved")
    assert _eventually(lambda: browser_event(console, new_client, origin=PARTNER), "ok")

    # A JWT provider: add it by its JWKS URL, Check it, verify pasted tokens.
    page.click("nav >> text=JWT providers")
    page.fill("#id", "idp")
    page.fill("#jwks_url", console.jwks_url)
    page.fill("#audience", "api")
    page.fill("#issuer", ISSUER)
    page.click("button:has-text('Add provider')")
    expect(page.locator("h1")).to_have_text("JWT provider idp")
    page.click("button:has-text('Check')")
    expect(page.locator("#kids")).to_contain_text("console-k1")
    page.fill("#token", token())
    page.click("button:has-text('Verify')")
    expect(page.locator("#token-reason")).to_have_text("ok")
    expect(page.locator("#token-claims")).to_contain_text("user-42")
    accessible(page, "provider")
    shot(page, "provider")
    page.fill("#token", token(exp=time.time() - 3600))
    page.click("button:has-text('Verify')")
    expect(page.locator("#token-reason")).to_have_text("jwt_invalid")
    expect(page.locator("#token-detail")).to_have_text("expired")
    page.fill("#token", token(aud="someone-else"))
    page.click("button:has-text('Verify')")
    expect(page.locator("#token-detail")).to_have_text("bad_audience")
    page.click("nav >> text=JWT providers")
    expect(page.locator("#providers")).to_contain_text(console.jwks_url)
    accessible(page, "providers")

    # A policy: only page views are anonymous from now on.
    assert browser_event(console, new_client, event_type="track") == "ok"
    page.click("nav >> text=Policies")
    accessible(page, "policies")
    policy = page.locator("form.policy", has_text="default")
    policy.locator("textarea[name=anonymous_events]").fill("page")
    policy.locator("button:has-text('Save default')").click()
    expect(page.locator("p.flash")).to_contain_text("policy default saved")
    shot(page, "policies")
    assert _eventually(lambda: browser_event(console, new_client, event_type="track"),
                       "anonymous_not_allowed")
    assert browser_event(console, new_client, event_type="page") == "ok"

    # Revoke, with the confirmation naming the key; the next event is refused.
    page.goto(key_url)
    page.click("text=Revoke…")
    expect(page.locator("main")).to_contain_text(f"Revoking deletes key {KEY}")
    accessible(page, "revoke")
    page.fill("#confirm", "not-the-key")
    page.click(f"button:has-text('Revoke {KEY}')")
    expect(page.locator("p.flash.error")).to_contain_text("nothing was revoked")
    page.fill("#confirm", KEY)
    page.click(f"button:has-text('Revoke {KEY}')")
    expect(page.locator("p.flash")).to_contain_text(f"revoked key {KEY}")
    expect(page.locator("#keys")).not_to_contain_text(KEY)
    assert _eventually(lambda: browser_event(console, new_client), "unknown_key")

    # The overview counts what happened.
    page.click("nav >> text=Overview")
    assert float(page.inner_text("#accepted-rate")) > 0
    expect(page.locator("#reasons")).to_contain_text("origin_not_allowed")
    expect(page.locator("#workers")).to_contain_text("ready")
    accessible(page, "overview")
    shot(page, "overview")

    # Sign out: the session ends on the server, not only in this browser.
    cookie = next(c for c in page.context.cookies() if c["name"] == "eg_console")
    page.click("button:has-text('Sign out')")
    expect(page).to_have_url(re.compile(r"/console/sign-in$"))
    answer = page.request.get(console.admin + "/console/keys", max_redirects=0,
                              headers={"Cookie": f"eg_console={cookie['value']}"})
    assert answer.status == 303 and answer.headers["location"] == "/console/sign-in"


def _eventually(decision: Callable[[], str], want: str, timeout_s: float = 10) -> bool:
    """A policy reaches the workers through auth-config within a second or so."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if decision() == want:
            return True
        time.sleep(0.3)
    return False
