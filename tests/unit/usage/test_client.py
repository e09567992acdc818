"""What `eventguard keys usage` and the admin API say when the usage process cannot answer:
one line that names the next step."""

from __future__ import annotations

import asyncio

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from workers.devstack.processes import free_port
from workers.usage import client


async def _fetch_from(status: int = 200, serves_usage: bool = True) -> str:
    """What `client.fetch` makes of a real HTTP server answering `status` on /usage/
    (or having no such page)."""
    app = web.Application()

    async def answer(request: web.Request) -> web.Response:
        return web.json_response({"keys": []}, status=status)

    if serves_usage:
        app.router.add_get("/usage/", answer)
    async with TestServer(app) as server:
        try:
            await client.fetch(str(server.make_url("")).rstrip("/"))
        except client.Unavailable as exc:
            return str(exc)
    return "answered"


def test_nothing_listening_names_the_command_to_start() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(client.Unavailable) as caught:
        asyncio.run(client.fetch(url))
    message = str(caught.value)
    assert "\n" not in message and url in message
    assert "`eventguard usage`" in message and "EVENTGUARD_USAGE_URL" in message


def test_a_server_without_usage_pages_is_named_as_such() -> None:
    # A worker's web server, say: it answers, but 404 on /usage/.
    message = asyncio.run(_fetch_from(serves_usage=False))
    assert "serves no usage" in message and "`eventguard usage`" in message


def test_a_usage_process_not_ready_says_retry() -> None:
    message = asyncio.run(_fetch_from(status=503))
    assert "answered 503" in message and "retry" in message


def test_an_answer_is_returned() -> None:
    assert asyncio.run(_fetch_from()) == "answered"
