"""The admin listener's app without a broker: redirects, headers, sign-in, and what a page
says when auth-config cannot be read (the browser tests cover the rest on the real stack)."""

from __future__ import annotations

import asyncio
import re
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from workers.auth.authorize import AuthState
from workers.console.app import CSP, create_admin_app
from workers.ingest.admin import AdminAPI
from workers.keys.admin import Change
from workers.settings import Settings

TOKEN = "unit-" + "0123456789abcdefghijklmnopqrstuvwxyz"


class Unreachable:
    """auth-config that never answers: what a page sees while Kafka is down."""

    state = AuthState()

    async def follow(self) -> None:
        raise TimeoutError

    async def publish(self, change: Change) -> None:
        raise TimeoutError


def run(check: Any) -> None:
    async def go() -> None:
        api = AdminAPI(Unreachable(), TOKEN, str)
        app = create_admin_app(api, Settings(), "http://127.0.0.1:8001")
        async with TestClient(TestServer(app)) as client:
            await check(client)
    asyncio.run(go())


async def signed_in(client: TestClient[Any, Any]) -> None:
    page = await (await client.get("/console/sign-in")).text()
    csrf = re.search(r'name="csrf" value="([^"]+)"', page)
    assert csrf is not None
    answer = await client.post("/console/sign-in", data={"csrf": csrf[1], "token": TOKEN},
                               allow_redirects=False)
    assert answer.status == 303 and answer.headers["Location"] == "/console/"


def test_pages_need_a_session_and_every_answer_has_the_headers() -> None:
    async def check(client: TestClient[Any, Any]) -> None:
        for path in ("/console/", "/console/keys", "/console/key?id=x", "/console/policies"):
            answer = await client.get(path, allow_redirects=False)
            assert answer.status == 303 and answer.headers["Location"] == "/console/sign-in"
            assert answer.headers["Content-Security-Policy"] == CSP
        answer = await client.get("/console/sign-in")
        assert answer.status == 200 and answer.headers["Cache-Control"] == "no-store"
        assert "Access-Control-Allow-Origin" not in answer.headers
    run(check)


def test_a_page_says_kafka_is_unavailable_instead_of_failing() -> None:
    async def check(client: TestClient[Any, Any]) -> None:
        await signed_in(client)
        answer = await client.get("/console/keys")
        assert answer.status == 503
        assert "Kafka is unavailable; nothing was changed" in await answer.text()
    run(check)


def test_sign_in_needs_its_form_token() -> None:
    async def check(client: TestClient[Any, Any]) -> None:
        answer = await client.post("/console/sign-in", data={"token": TOKEN},
                                   allow_redirects=False)
        assert answer.status == 403 and "eg_console" not in answer.cookies
    run(check)
