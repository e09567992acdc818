"""Records written straight to raw-events (as kcat or a backend may) that are
broken in every way: each becomes a rejected record plus an audit record, and
the partition keeps flowing."""

from __future__ import annotations

import asyncio

import orjson
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.producer import message_accumulator
from aiokafka.producer import producer as producer_module
from aiokafka.record import default_records

from tests.integration.conftest import Env
from workers.auth import secrets


def produce_and_collect(env: Env, records: list[tuple[str, bytes | None, list[tuple[str, bytes]]]]
                        ) -> dict[str, dict[str, list[object]]]:
    """All records share one key, so one partition: a stall would block the last one."""
    async def go() -> dict[str, dict[str, list[object]]]:
        async with env.collector() as col:
            producer = AIOKafkaProducer(bootstrap_servers=env.bootstrap, acks="all",
                                        max_request_size=4 * 1024 * 1024)
            await producer.start()
            try:
                for rid, value, headers in records:
                    await producer.send_and_wait(env.prefix + "raw-events", value, key=b"same",
                                                 headers=[("eg-request-id", rid.encode()),
                                                          *headers])
            finally:
                await producer.stop()
            return {rid: await col.decision(rid) for rid, _, _ in records}
    return asyncio.run(go())


def test_garbage_never_stalls_the_partition(env: Env) -> None:
    token = [("eg-token", env.direct_secret.encode()), ("eg-endpoint", b"s2s")]
    digest_token = [("eg-token", secrets.digest(env.secrets["backend"]).encode()),
                    ("eg-endpoint", b"s2s")]
    cases = {
        "bad-utf8": (b'{"event_type": "\xff\xfe"}', token, "malformed_event"),
        "not-json": (b"{{{", token, "malformed_event"),
        "deep": (b"[" * 3000 + b"]" * 3000, token, "malformed_event"),
        "huge": (b'{"x": "' + b"a" * (1024 * 1024 + 10) + b'"}', token, "payload_too_large"),
        "null-value": (None, token, "malformed_event"),
        "no-endpoint": (b'{"event_type":"page"}', [("eg-token", b"x")], "malformed_event"),
        "no-headers": (b'{"event_type":"page"}', [("eg-endpoint", b"client")],
                       "missing_credentials"),
        "bad-header-utf8": (b'{"event_type":"page"}',
                            [("eg-token", b"\xff\xfe"), ("eg-endpoint", b"s2s")], "unknown_key"),
        "wrong-types": (orjson.dumps({"event_type": {"nested": 1}, "event": [1]}), token, "ok"),
        "plain-token-ok": (b'{"event_type":"page"}', token, "ok"),
        "digest-token-ok": (b'{"event_type":"page"}', digest_token, "ok"),
        # Issue 8: a 350 KB header made the output too large for its topic, and the
        # worker stopped deciding.
        "huge-user-agent": (b'{"event_type":"page"}',
                            [*token, ("eg-user-agent", b"u" * 350_000),
                             ("eg-origin", b"o" * 200_000), ("eg-path", b"/" * 200_000)], "ok"),
        "huge-batch": (orjson.dumps([{"event_type": "page"}] * 5000), token,
                       "payload_too_large"),
        "huge-event-type": (orjson.dumps({"event_type": "t" * 500_000}), token, "ok"),
        # Issue 18: two values of one credential header; the ingest never writes these.
        "two-tokens": (b'{"event_type":"page"}',
                       [*token, ("eg-token", digest_token[0][1])], "malformed_event"),
        "two-origins": (b'{"event_type":"page"}',
                        [*token, ("eg-origin", b"https://a.shop.test"),
                         ("eg-origin", b"https://evil.test")], "malformed_event"),
        # orjson reads 1024 levels but writes 254: the output could not be written.
        "deep-valid": (b'{"event_type":"page","a":' + b"[" * 300 + b"]" * 300 + b"}", token,
                       "malformed_event"),
    }
    prefix = secrets.generate()[:8]
    got = produce_and_collect(env, [(f"{prefix}-{name}", value, headers)
                                    for name, (value, headers, _) in cases.items()])
    for name, (_, _, reason) in cases.items():
        records = got[f"{prefix}-{name}"]
        [audit] = records["audit-log"]
        assert audit["reason"] == reason, (name, audit)  # type: ignore[index]
        topic = "accepted-events" if reason == "ok" else "rejected-events"
        assert len(records[topic]) == 1, name
    for name in ("two-tokens", "two-origins"):
        [audit] = got[f"{prefix}-{name}"]["audit-log"]
        assert audit["detail"].endswith("appears more than once"), audit  # type: ignore[index]


def test_records_without_a_usable_id_are_decided_under_their_position(env: Env) -> None:
    """Keys that are not UTF-8, or ids too long to key an output: `<topic>-<p>-<offset>`."""
    headers = [("eg-endpoint", b"s2s"), ("eg-token", env.direct_secret.encode())]
    shapes = [(b"\xff\xfe\xfd", []), (None, []), (b"k" * 5000, []),
              (None, [("eg-request-id", b"\xc3\x28")]), (b"\x00\x01", [("eg-request-id", b"")])]

    async def go() -> None:
        async with env.collector() as col:
            producer = AIOKafkaProducer(bootstrap_servers=env.bootstrap, acks="all")
            await producer.start()
            try:
                ids = []
                for key, extra in shapes:
                    meta = await producer.send_and_wait(
                        env.prefix + "raw-events", b'{"event_type":"page"}', key=key,
                        headers=[*headers, *extra])
                    ids.append(f"{meta.topic}-{meta.partition}-{meta.offset}")
            finally:
                await producer.stop()
            for rid in ids:
                got = await col.decision(rid)
                assert [a["reason"] for a in got["audit-log"]] == ["ok"], rid
                assert got["accepted-events"][0]["request_id"] == rid
    asyncio.run(go())


class _RawName(str):
    """A header name that encodes to bytes that are not UTF-8, as kcat can write."""

    def encode(self, encoding: str = "utf-8", errors: str = "strict") -> bytes:
        return b"eg-\xff\xfe"


def test_a_header_name_the_client_cannot_decode_is_rejected_not_fatal(
        env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    # aiokafka's C record builder encodes names itself; the Python one calls encode().
    for module in (message_accumulator, producer_module):
        monkeypatch.setattr(module, "DefaultRecordBatchBuilder",
                            default_records._DefaultRecordBatchBuilderPy)
    headers = [("eg-endpoint", b"s2s"), ("eg-token", env.direct_secret.encode())]
    after = f"after-{secrets.generate()[:8]}"

    async def go() -> None:
        async with env.collector() as col:
            producer = AIOKafkaProducer(bootstrap_servers=env.bootstrap, acks="all")
            await producer.start()
            try:
                meta = await producer.send_and_wait(
                    env.prefix + "raw-events", b'{"event_type":"page"}', key=b"bad-name",
                    headers=[(_RawName("x"), b"v"), *headers])
                await producer.send_and_wait(
                    env.prefix + "raw-events", b'{"event_type":"page"}', key=b"bad-name",
                    headers=[("eg-request-id", after.encode()), *headers])
            finally:
                await producer.stop()
            fallback = f"{meta.topic}-{meta.partition}-{meta.offset}"
            got = await col.decision(fallback)
            [audit] = got["audit-log"]
            assert audit["reason"] == "malformed_event", audit
            assert audit["detail"].startswith("unreadable record (UnicodeDecodeError")
            assert [a["reason"] for a in (await col.decision(after))["audit-log"]] == ["ok"]
    asyncio.run(go())
    assert all(p.alive() for p in env.stack.procs)
