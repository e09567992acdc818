"""The ingest's JSON answers: `{"status": "ok", ...}` or `{"status": "error", "error": ...}`."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web


def json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, headers=headers,
                        content_type="application/json")


def error(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    """One line that says what is wrong and what to do; never a secret."""
    return json({"status": "error", "error": message}, status, headers)
