"""Garbage on every topic the worker and the usage process read besides raw-events
(test_raw_events_fuzz.py).

auth-config, the changelogs of the key table and the usage tables, nonces, the usage
deltas and audit-log (which the usage tally reads) can all be written by anyone with
access to the cluster: kcat, a buggy tool, a half-finished migration. Each gets 300
broken records: random bytes, empty keys, keys that are not UTF-8 or cannot be a table
key, JSON of the wrong shape, records that look right with fields of the wrong type,
900 KiB values, header names that are not UTF-8 (aiokafka cannot parse those), and
counts past 64 bits.

After that the worker must still be alive and ready, still take key changes and still
refuse a replayed signature, and the usage process must still count usage; and a restart
of both, which recovers the key table and the usage tables from changelogs holding the
garbage, must come back deciding with the same keys and counting.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import aiohttp
import orjson
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.producer import message_accumulator
from aiokafka.producer import producer as producer_module
from aiokafka.record import default_records

from tests.chaos.conftest import ChaosStack
from tests.integration.conftest import publish_config, write_config
from workers import client
from workers.auth import secrets
from workers.devstack.processes import Proc

PER_TOPIC = 300
SEED = 11
CHANGE_S = 30.0  # a key change after the garbage is decided with it within this
APP = "eventguard"
TOPICS = ("auth-config", f"{APP}-keys-changelog", "nonces", f"{APP}-usage-deltas",
          f"{APP}-usage-counts-changelog", f"{APP}-usage-last-changelog",
          "audit-log")
ACCESS_KEY, ACCESS_SECRET = "AK-side", "side-access-secret-0123456789abcdef"

Record = tuple[bytes | None, bytes | None, list[tuple[str, bytes]]]


def _minute() -> str:
    return datetime.now(UTC).isoformat()[:16]


def _shapes(rng: random.Random) -> list[Callable[[int], Record]]:
    """One maker per kind of garbage; each takes the record's number."""
    wrong_json = [b"[]", b"{}", b'"x"', b"1", b"null", b"[1,2,3]", b"true",
                  b"[" * 3000 + b"]" * 3000, b'{"a":' * 300 + b"1" + b"}" * 300]
    lookalikes = [
        (b"key/g", {"id": 5}),
        (b"key/g", {"id": "g", "server_secrets": "sha256:not-a-list"}),
        (b"key/g", {"id": "g", "server_secrets": [123], "origins": [1, 2]}),
        (b"key/g", {"id": "g", "server_secret": "plain-text-secret"}),
        (b"policy/p", {"anonymous_events": "all"}),
        (b"provider/q", {"id": "q", "jwks_url": 7, "public_keys": ["not a pem"]}),
        (b'"load"', {"minute": _minute(), "counts": {"ok": 2 ** 70}}),
        (b'"load"', {"minute": _minute(), "counts": {"ok": 2 ** 64 - 1}}),  # twice: > 64 bits
        (b'"load"', {"minute": _minute(), "counts": {"ok": 2 ** 64 - 1}}),
        (b'"load"', {"minute": _minute(), "counts": {"ok": -3, "x" * 5000: 1}}),
        (b'"load"', {"minute": "9999-99-99T99:99", "counts": {"ok": 1}}),
        (b"\"load\"", {"minute": _minute(), "counts": []}),
        (b"r1", {"request_id": "r1", "key_id": ["list"], "reason": {"a": 1},
                 "decision": 5, "ts": "2026-11-27T11:00:00Z"}),
        (b"r2", {"request_id": "r2", "key_id": "load", "reason": "x" * 10000, "ts": 123}),
        (b"r3", {"key_id": "load", "reason": "ok", "decision": "accepted",
                 "ts": "9999-99-99T99:99:99Z"}),
        (b'{"a": 1}', {"minute": _minute(), "counts": {"ok": 1}}),  # keys a table cannot
        (b'[["x"], [1, [2]]]', {"last_accepted": 5}),                 # hold (unhashable)
        (b"n1", ["delivery", "not a time"]),
        (b"n2", ["delivery", 1e300, "third"]),
    ]
    return [
        lambda i: (rng.randbytes(rng.randrange(1, 64)), rng.randbytes(rng.randrange(1, 4096)), []),
        lambda i: (b"", rng.randbytes(100), []),  # compacted topics refuse a null key
        lambda i: (rng.randbytes(16), None, []),
        lambda i: (b"key/\xff\xfe" + str(i).encode(), b'{"id": "x"}', []),
        lambda i: (f"key/w{i}".encode(), wrong_json[i % len(wrong_json)], []),
        lambda i: (lookalikes[i % len(lookalikes)][0],
                   json.dumps(lookalikes[i % len(lookalikes)][1]).encode(), []),
        # One 900 KiB value per topic (the rest small): 250 of them filled the shared
        # broker's page cache and slowed the tests after this one.
        lambda i: (f"key/big{i}".encode(), b"{" + b" " * (900 * 1024 if i < 8 else 900) + b"}",
                   []),
        lambda i: (f"key/h{i}".encode(), b"{}", [(_RawName("eg-h"), b"v")]),
    ]


def garbage(seed: int) -> list[Record]:
    rng = random.Random(seed)
    shapes = _shapes(rng)
    return [shapes[i % len(shapes)](i) for i in range(PER_TOPIC)]


async def _produce(cs: ChaosStack, topic: str, records: list[Record]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=cs.bootstrap, acks="all",
                                max_request_size=4 * 1024 * 1024, linger_ms=5)
    await producer.start()
    try:
        sent = []
        for key, value, headers in records:
            if headers:
                # A header name aiokafka cannot decode: the rest of its record batch is
                # unreadable too, so it travels alone.
                await producer.send_and_wait(topic, value, key=key, headers=headers)
            else:
                sent.append(await producer.send(topic, value, key=key))
        await asyncio.gather(*sent)
    finally:
        await producer.stop()


class _RawName(str):
    """A header name that encodes to bytes that are not UTF-8, as kcat can write (sent
    with aiokafka's Python record builder: the C one encodes names itself)."""

    def encode(self, encoding: str = "utf-8", errors: str = "strict") -> bytes:
        return b"eg-\xff\xfe"


def _tail_audit_log(cs: ChaosStack) -> list[dict[str, Any]]:
    done = subprocess.run(
        [sys.executable, "-m", "workers.cli", "tail", "audit-log", "--from-beginning",
         "--timeout", "5"], capture_output=True, timeout=120,
        env={**os.environ, "KAFKA_BOOTSTRAP_SERVERS": cs.bootstrap,
             "EVENTGUARD_TOPIC_PREFIX": cs.prefix, "EVENTGUARD_CONFIG": str(cs.config)})
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-3000:]
    return [orjson.loads(line) for line in done.stdout.splitlines()]


async def _publish(cs: ChaosStack, key: str, value: dict[str, object] | None) -> None:
    await publish_config(cs.bootstrap, cs.prefix, key, value)


async def _reason(cs: ChaosStack, session: aiohttp.ClientSession, headers: dict[str, str],
                  body: bytes = b'{"event_type":"side"}') -> str:
    async with cs.collector(from_beginning=False) as col:
        async with session.post(f"{cs.url}/api/v1/s2s/event", data=body,
                                headers=headers) as resp:
            assert resp.status == 200, await resp.text()
            rid = str((await resp.json())["request_id"])
        got = await col.decision(rid, timeout_s=30)
    return str(got["audit-log"][0]["reason"])


async def _until(cs: ChaosStack, session: aiohttp.ClientSession, secret: str, want: str
                 ) -> float:
    """Seconds until a request with `secret` is decided `want`."""
    started = time.monotonic()
    seen = ""
    while time.monotonic() - started < CHANGE_S:
        seen = await _reason(cs, session, {"X-Auth-Token": secret})
        if seen == want:
            return time.monotonic() - started
        await asyncio.sleep(0.3)
    raise AssertionError(f"still {seen!r}, not {want!r}, {CHANGE_S:.0f}s after the change")


async def _signed_twice(cs: ChaosStack, session: aiohttp.ClientSession) -> tuple[str, str]:
    body = orjson.dumps({"event_type": "signed", "n": time.time()})
    headers = client.signed_headers(ACCESS_KEY, ACCESS_SECRET, body, "/api/v1/s2s/event")
    first = await _reason(cs, session, headers, body)
    return first, await _reason(cs, session, headers, body)


async def _usage_ok(usage: Proc, session: aiohttp.ClientSession) -> int:
    """Key `load`'s ok decisions in the last hour, as the usage process's page says."""
    async with session.get(f"{usage.url}/usage/load/") as resp:
        assert resp.status == 200, await resp.text()
        return int((await resp.json())["totals"].get("ok", 0))


async def _ready(worker: Proc, session: aiohttp.ClientSession, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert worker.alive(), worker.tail()
        async with session.get(f"{worker.url}/ready") as resp:
            if resp.status == 200:
                return
        await asyncio.sleep(0.5)
    raise AssertionError(f"{worker.name} not ready within {timeout_s:.0f}s: {worker.tail()}")


@pytest.mark.chaos
@pytest.mark.timeout(600)
def test_worker_survives_garbage_on_every_topic_it_reads(
        chaos_stack: ChaosStack, monkeypatch: pytest.MonkeyPatch) -> None:
    cs = chaos_stack
    for module in (message_accumulator, producer_module):
        monkeypatch.setattr(module, "DefaultRecordBatchBuilder",
                            default_records._DefaultRecordBatchBuilderPy)
    write_config(cs.config, [
        {"id": "load", "server_secret": cs.secrets["load"]},
        {"id": "signer", "server_secret": secrets.generate(), "access_key": ACCESS_KEY,
         "access_secret": ACCESS_SECRET},
    ])
    cs.ingest()
    worker = cs.worker()
    usage = cs.usage()

    async def go() -> None:
        nonlocal worker, usage
        await cs.wait_deciding([worker], timeout_s=120)
        async with aiohttp.ClientSession() as s:
            assert await _signed_twice(cs, s) == ("ok", "hmac_replay")
            t0 = time.monotonic()
            for n, topic in enumerate(TOPICS):
                await _produce(cs, cs.prefix + topic, garbage(SEED + n))
            print(f"\n[side] {PER_TOPIC} garbage records on each of {', '.join(TOPICS)} "
                  f"in {time.monotonic() - t0:.1f}s")

            # `eventguard run`'s reader of the output topics and `eventguard tail` read past
            # audit-log's garbage, the unparsable records too.
            async with cs.collector(topics=("audit-log",)) as col:
                assert await col.wait(lambda: col.count >= PER_TOPIC, timeout_s=30), col.count
            tailed = await asyncio.to_thread(_tail_audit_log, cs)
            assert len(tailed) >= PER_TOPIC
            assert any("x-eventguard-unreadable" in line["headers"] for line in tailed)

            # Still deciding, and with key changes made after the garbage.
            fresh = secrets.generate()
            await _publish(cs, "key/after", {"id": "after", "server_secrets":
                                             [secrets.digest(fresh)], "source": "side"})
            added_s = await _until(cs, s, fresh, "ok")
            gone = secrets.generate()
            await _publish(cs, "key/gone", {"id": "gone", "server_secrets":
                                            [secrets.digest(gone)], "source": "side"})
            await _until(cs, s, gone, "ok")
            await _publish(cs, "key/gone", None)
            revoked_s = await _until(cs, s, gone, "unknown_key")
            signed = await _signed_twice(cs, s)
            await _ready(worker, s)
            await _ready(usage, s)
            usage_before = await _usage_ok(usage, s)
            print(f"[side] after the garbage: new key ok in {added_s:.1f}s, revoked in "
                  f"{revoked_s:.1f}s, signed twice {signed}, usage of load ok={usage_before}")
            assert signed == ("ok", "hmac_replay")

            # A restart recovers the key table and the usage tables from changelogs that
            # hold the garbage.
            cs.mark("worker", "restarting after the garbage")
            cs.mark("usage", "restarting after the garbage")
            worker.stop()
            usage.stop()
            worker = cs.worker("worker")
            usage = cs.usage("usage")
            started = time.monotonic()
            await cs.wait_deciding([worker], timeout_s=120)
            await _ready(worker, s)
            await _ready(usage, s)
            back_s = time.monotonic() - started
            assert await _reason(cs, s, {"X-Auth-Token": fresh}) == "ok"
            assert await _reason(cs, s, {"X-Auth-Token": gone}) == "unknown_key"
            after = await _signed_twice(cs, s)
            usage_after = await _usage_ok(usage, s)
            print(f"[side] restarted: deciding and ready in {back_s:.1f}s; signed twice "
                  f"{after}; usage of load ok={usage_after}")
            assert after == ("ok", "hmac_replay")
            assert usage_after >= usage_before > 0

        for name, proc in (("worker", worker), ("usage", usage)):
            log = cs.log_text(name)
            print(f"[side] {name} log: {log.count('skipped')} 'skipped' lines, "
                  f"{log.count('refused')} 'refused', {log.count('unreadable')} 'unreadable', "
                  f"{log.count('Traceback')} tracebacks")
            assert proc.alive(), proc.tail()
            assert "Traceback" not in log and "--- Logging error ---" not in log, cs.logs
            # One line per kind of skipped record per 10 s, with a count; not one per
            # record (3,000 records were read: each topic's 300 twice).
            skipped = log.count("skipped") + log.count("unreadable")
            assert skipped < 150, f"{skipped} lines about skipped records in {cs.logs}"

    asyncio.run(go())
