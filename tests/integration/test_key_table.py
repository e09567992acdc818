"""auth-config -> apply_config agent -> the key table (a Faust GlobalTable) -> every decision."""

from __future__ import annotations

import asyncio

from tests.integration.conftest import Env, publish_config
from workers.auth import secrets


async def publish(env: Env, key: str, value: dict[str, object] | None) -> None:
    await publish_config(env.bootstrap, env.prefix, key, value)


def decide_until(env: Env, secret: str, want: str, attempts: int = 40) -> list[str]:
    """Post with `secret` until the decision is `want`; returns every reason seen."""
    async def go() -> list[str]:
        seen: list[str] = []
        async with env.collector() as col:
            for _ in range(attempts):
                _, body = await asyncio.to_thread(
                    env.post, f"/api/v1/s2s/event?token={secret}", b'{"event_type":"k"}')
                got = await col.decision(str(body["request_id"]))
                seen.append(got["audit-log"][0]["reason"])
                if seen[-1] == want:
                    break
                await asyncio.sleep(0.25)
        return seen
    return asyncio.run(go())


def test_key_published_by_any_producer_works_and_tombstone_revokes(env: Env) -> None:
    secret = secrets.generate()
    record: dict[str, object] = {"id": "kcat", "server_secrets": [secrets.digest(secret)],
                                 "source": "kcat"}
    asyncio.run(publish(env, "key/kcat", record))
    assert decide_until(env, secret, "ok")[-1] == "ok"
    asyncio.run(publish(env, "key/kcat", None))
    assert decide_until(env, secret, "unknown_key")[-1] == "unknown_key"


def test_plaintext_record_is_refused_and_logged_by_key_not_secret(env: Env) -> None:
    plain = "plain-" + secrets.generate()
    asyncio.run(publish(env, "key/leaky", {"id": "leaky", "server_secret": plain}))
    # A valid record published after the refused one proves the refused one was read.
    marker = secrets.generate()
    asyncio.run(publish(env, "key/marker",
                        {"id": "marker", "server_secret": secrets.digest(marker)}))
    assert decide_until(env, marker, "ok")[-1] == "ok"
    assert decide_until(env, plain, "ok", attempts=3) == ["unknown_key"] * 3
    logs = env.stack_logs()
    assert b"auth-config: refused key/leaky: server secrets must be 'sha256:<64 hex>'" in logs
    assert plain.encode() not in logs
