"""A small client for the ingest: what a backend needs to sign its requests.

    headers = signed_headers(access_key, access_secret, body, "/api/v1/s2s/event")

The signature covers the exact body bytes: send `body` exactly as signed.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

import aiohttp
import orjson

from workers.auth.signing import sign


def signed_headers(access_key: str, access_secret: str, body: bytes, path: str,
                   method: str = "POST", now_ms: int | None = None,
                   nonce: str | None = None) -> dict[str, str]:
    timestamp = str(now_ms if now_ms is not None else int(time.time() * 1000))
    nonce = nonce or secrets.token_hex(16)
    return {"X-Access-Key": access_key, "X-Timestamp": timestamp, "X-Nonce": nonce,
            "X-Signature": sign(access_secret, timestamp, nonce, method, path, body)}


async def post_event(base_url: str, event: Any, *, s2s: bool = False, token: str | None = None,
                     jwt: str | None = None, access_key: str | None = None,
                     access_secret: str | None = None, origin: str | None = None
                     ) -> tuple[int, dict[str, Any]]:
    """POST one event (or a list of events); returns the HTTP status and JSON answer."""
    path = "/api/v1/s2s/event" if s2s else "/api/v1/event"
    body = orjson.dumps(event)
    headers = {"Content-Type": "application/json"}
    if token:
        headers["X-Auth-Token"] = token
    if jwt:
        headers["Authorization"] = f"Bearer {jwt}"
    if origin:
        headers["Origin"] = origin
    if access_key and access_secret:
        headers.update(signed_headers(access_key, access_secret, body, path))
    async with aiohttp.ClientSession() as session, session.post(
            base_url.rstrip("/") + path, data=body, headers=headers) as resp:
        return resp.status, await resp.json(content_type=None)
