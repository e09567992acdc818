"""HTTP -> ingest -> raw-events -> worker -> accepted/rejected + audit, on real Kafka."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

import aiohttp
import orjson
import pytest

from tests.integration.conftest import Env

SHOP = {"Origin": "https://www.shop.test"}


def send(env: Env, path: str, body: Any = None, headers: dict[str, str] | None = None,
         raw: bytes | None = None) -> dict[str, list[Any]]:
    """POST one request and return every output record of its single decision."""
    return send_many(env, path, body, headers, raw, count=1)[""]


def send_many(env: Env, path: str, body: Any = None, headers: dict[str, str] | None = None,
              raw: bytes | None = None, count: int = 1) -> dict[str, dict[str, list[Any]]]:
    data = raw if raw is not None else orjson.dumps(body if body is not None
                                                    else {"event_type": "page"})

    async def go() -> dict[str, dict[str, list[Any]]]:
        async with env.collector() as col:
            async with aiohttp.ClientSession() as s, s.post(env.url + path, data=data,
                                                            headers=headers or {}) as r:
                assert r.status == 200, await r.text()
                rid = (await r.json())["request_id"]
            ids = [rid] if count == 1 else [f"{rid}:{i}" for i in range(count)]
            out = {}
            for i, eid in enumerate(ids):
                out["" if count == 1 else str(i)] = await col.decision(eid)
            return out
    return asyncio.run(go())


def accepted(got: dict[str, list[Any]]) -> dict[str, Any]:
    assert not got.get("rejected-events"), got
    [record] = got["accepted-events"]
    [audit] = got["audit-log"]
    assert audit["decision"] == "accepted" and audit["reason"] == "ok"
    assert audit["request_id"] == record["request_id"]
    assert isinstance(audit["duration_us"], int) and audit["worker"]
    return record  # type: ignore[no-any-return]


def rejected(got: dict[str, list[Any]], reason: str) -> dict[str, Any]:
    assert not got.get("accepted-events"), got
    [record] = got["rejected-events"]
    [audit] = got["audit-log"]
    assert record["reason"] == reason, record
    assert (audit["decision"], audit["reason"]) == ("rejected", reason)
    return record  # type: ignore[no-any-return]


def basic(user: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:".encode()).decode()


@pytest.mark.parametrize("where", ["query", "x-auth-token", "api_key", "p_param", "basic"])
def test_client_secret_accepted_from_every_jitsu_location(env: Env, where: str) -> None:
    secret = env.secrets["web"]
    path, headers = "/api/v1/event", dict(SHOP)
    if where == "query":
        path += f"?token={secret}"
    elif where == "x-auth-token":
        headers["X-Auth-Token"] = secret
    elif where == "api_key":
        headers["api_key"] = secret
    elif where == "p_param":
        path = f"/api.r4nd0m?p_k9z={secret}"
    else:
        headers["Authorization"] = basic(secret)
    record = accepted(send(env, path, {"event_type": "page", "url": "/"}, headers))
    assert record["auth"] == {"key_id": "web", "method": "client_secret",
                              "identity": "anonymous", "subject": None}
    assert record["event"] == {"event_type": "page", "url": "/"}
    assert record["context"]["origin"] == "https://www.shop.test"
    assert record["received_at"].endswith("Z")


def test_server_secret_on_s2s_and_node_sdk_api_key_in_body(env: Env) -> None:
    record = accepted(send(env, "/api/v1/s2s/event",
                           {"event_type": "track", "api_key": env.secrets["backend"]}))
    assert record["auth"]["method"] == "server_secret" and record["auth"]["key_id"] == "backend"
    assert "api_key" not in record["event"]


@pytest.mark.parametrize(
    ("path", "secret", "headers", "reason"),
    [
        ("/api/v1/event?token=nope", None, SHOP, "unknown_key"),
        ("/api/v1/event", None, SHOP, "missing_credentials"),
        ("/api/v1/s2s/event?token={both_c}", None, {}, "wrong_endpoint"),
        ("/api/v1/event?token={both_s}", None, SHOP, "wrong_endpoint"),
        ("/api/v1/event?token={web}", None, {"Origin": "https://evil.test"}, "origin_not_allowed"),
        ("/api/v1/event?token={web}", None, {}, "origin_not_allowed"),
    ],
)
def test_rejections(env: Env, path: str, secret: None, headers: dict[str, str],
                    reason: str) -> None:
    record = rejected(send(env, path.format(**env.secrets), {"event_type": "page"}, headers),
                      reason)
    assert record["event"] == {"event_type": "page"} and record["detail"]
    for value in env.secrets.values():
        assert value not in orjson.dumps(record).decode()


@pytest.mark.parametrize("origin", ["https://evil.test#.shop.test", "https://evil.test\\.shop.test",
                                    "https://evil.test?.shop.test", "https://x@a.shop.test",
                                    "https://a.shop.test/", "www.shop.test"])
def test_a_look_alike_origin_is_malformed(env: Env, origin: str) -> None:
    record = rejected(send(env, f"/api/v1/event?token={env.secrets['web']}",
                           {"event_type": "page"}, {"Origin": origin}), "origin_not_allowed")
    assert record["detail"] == "malformed Origin"
    assert record["context"]["origin"] == origin  # kept as sent, for whoever investigates


@pytest.mark.parametrize(("path", "headers", "error"), [
    ("/api/v1/event?token={web}", [("Origin", "https://a.shop.test"), ("Origin", "https://b")],
     "header Origin is sent more than once; send each credential header once"),
    ("/api/v1/s2s/event", [("X-Auth-Token", "{backend}"), ("x-auth-token", "{backend}")],
     "header X-Auth-Token is sent more than once; send each credential header once"),
    ("/api/v1/s2s/event?token={backend}", [("X-Auth-Token", "{both_s}")],
     "the API secret is sent in query token, header X-Auth-Token with different values; "
     "send it once"),
])
def test_two_answers_to_who_sent_it_are_400(env: Env, path: str, headers: list[tuple[str, str]],
                                            error: str) -> None:
    # Raw HTTP: aiohttp's client folds repeated headers into one.
    async def post() -> tuple[bytes, dict[str, Any]]:
        host, port = env.url.removeprefix("http://").split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        body = b'{"event_type":"page"}'
        lines = [f"POST {path.format(**env.secrets)} HTTP/1.1", "Host: x",
                 *(f"{name}: {value.format(**env.secrets)}" for name, value in headers),
                 f"Content-Length: {len(body)}", "Connection: close", "", ""]
        writer.write("\r\n".join(lines).encode() + body)
        head, _, answer = (await reader.read()).partition(b"\r\n\r\n")
        writer.close()
        return head, orjson.loads(answer)
    head, body = asyncio.run(post())
    assert head.startswith(b"HTTP/1.1 400 ") and body["error"] == error
    assert b"access-control-allow-origin" not in head.lower()  # two Origins: neither echoed
    for value in env.secrets.values():
        assert value not in body["error"]


def test_scalar_json_is_malformed_event(env: Env) -> None:
    record = rejected(send(env, f"/api/v1/s2s/event?token={env.secrets['backend']}", raw=b"42"),
                      "malformed_event")
    assert record["detail"] == "body is a JSON int, expected an object or array"


def test_unparseable_body_is_400_and_never_reaches_kafka(env: Env) -> None:
    status, body = env.post("/api/v1/event?token=x", b'{"event_type": ')
    assert status == 400 and body["error"] == "body is not valid JSON; send a JSON object or array"


def test_batch_array_gives_one_decision_per_event(env: Env) -> None:
    got = send_many(env, f"/api/v1/s2s/event?token={env.secrets['backend']}",
                    [{"event_type": "page"}, {"event_type": "form.submit"}, "junk"], count=3)
    assert accepted(got["0"])["request_id"].endswith(":0")
    assert rejected(got["1"], "jwt_required")["event"] == {"event_type": "form.submit"}
    assert rejected(got["2"], "malformed_event")["request_id"].endswith(":2")


def test_events_wrapper_batch(env: Env) -> None:
    got = send_many(env, f"/api/v1/event?token={env.secrets['web']}",
                    {"events": [{"type": "track"}, {"type": "page"}]}, SHOP, count=2)
    assert [accepted(got[i])["event"]["type"] for i in ("0", "1")] == ["track", "page"]
