"""The baseline of `eventguard bench ingest`: an aiohttp app that reads the body and
answers 200 JSON, nothing else. Run as a process of its own, like the ingest:
`python -m workers.bench.bare PORT [--uvloop]`.
"""

from __future__ import annotations

import sys

from aiohttp import web

BODY = b'{"status":"ok","request_id":"00000000000000000000000000000000"}'


async def _answer(request: web.Request) -> web.Response:
    await request.read()
    return web.Response(body=BODY, content_type="application/json")


def app() -> web.Application:
    application = web.Application()
    application.router.add_post("/{tail:.*}", _answer)
    application.router.add_get("/health", _health)
    return application


async def _health(_: web.Request) -> web.Response:
    return web.Response(body=b'{"status":"ok"}', content_type="application/json")


def main(argv: list[str]) -> int:
    port = int(argv[0])
    loop = None
    if "--uvloop" in argv[1:]:
        import uvloop

        loop = uvloop.new_event_loop()
    web.run_app(app(), host="127.0.0.1", port=port, print=None, access_log=None, loop=loop)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
