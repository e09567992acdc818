"""5,000+ broken records written straight to raw-events (as kcat or a buggy backend may).

Every record must get a (rejected) decision on audit-log, under its eg-request-id,
its key, or the fallback id `<topic>-<partition>-<offset>`; the worker must stay
alive and keep deciding: normal events posted through HTTP afterwards are decided
within PROMPT_S.

CHAOS_RAW_CLASSES=a,b (class names below) limits the run to those classes, to look
at one failure at a time; the full run is the test.
"""

from __future__ import annotations

import asyncio
import os
import random
import re
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass

import aiohttp
import orjson
import pytest
from aiokafka import AIOKafkaProducer

from tests.chaos.conftest import ChaosStack
from tests.chaos.load import drain
from workers.auth import secrets

RECORDS = 5_000
SEED = 8
PROMPT_S = 60.0  # normal events posted after the garbage: decided within this
GARBAGE_WAIT_S = 120.0
NORMAL = 200
MAX_BODY = 1024 * 1024
HUGE_HEADER = 350 * 1024
TOKEN_RE = re.compile(r"rf\d+x")

Headers = list[tuple[str, bytes]]


@dataclass
class Rec:
    cls: str
    token: str | None  # in the request id (eg-request-id or key) when the shape allows one
    key: bytes | None
    value: bytes | None
    headers: Headers
    may_accept: bool = False  # carries a valid token: accepted, or rejected as too large
    partition: int = -1
    offset: int = -1


def _base(tok: str, endpoint: bytes = b"s2s") -> Headers:
    return [("eg-request-id", tok.encode()), ("eg-endpoint", endpoint),
            ("eg-token", b"ch-not-a-key")]


def _garbage_value(rng: random.Random, tok: str, good: bytes) -> Rec:
    return Rec("garbage_value", tok, tok.encode(), rng.randbytes(rng.randrange(1, 4096)),
               _base(tok))


def _empty_value(rng: random.Random, tok: str, good: bytes) -> Rec:
    return Rec("empty_value", tok, tok.encode(), rng.choice([b"", None, b" ", b"\n"]), _base(tok))


def _no_headers_no_key(rng: random.Random, tok: str, good: bytes) -> Rec:
    # No derivable id at all: decided under the fallback id <topic>-<partition>-<offset>.
    return Rec("no_headers_no_key", None, None, b'{"event_type":"page"}', [])


def _no_headers_utf8_key(rng: random.Random, tok: str, good: bytes) -> Rec:
    return Rec("no_headers_utf8_key", tok, tok.encode(), b'{"event_type":"page"}', [])


def _non_utf8_key(rng: random.Random, tok: str, good: bytes) -> Rec:
    key = rng.choice([b"\xff\xfe", b"\xc3", b"\x80\x80"]) + tok.encode() + b"\xed\xa0\x80"
    return Rec("non_utf8_key", tok, key, b'{"event_type":"page"}', [("eg-endpoint", b"s2s")])


def _garbage_headers(rng: random.Random, tok: str, good: bytes) -> Rec:
    headers = _base(tok)
    for _ in range(rng.randrange(1, 20)):
        name = rng.choice(["eg-token", "eg-jwt", "eg-origin", "eg-nonce", "eg-timestamp",
                           "eg-signature", "eg-access-key", "eg-received-at", "eg-ip", "eg-path",
                           "eg-query", "eg-", "eg-\u00e9", "x", "", "eg-endpoint"])
        headers.append((name, rng.randbytes(rng.randrange(0, 200))))
    rng.shuffle(headers)
    headers.insert(0, ("eg-request-id", tok.encode()))  # first wins? either way it has tok
    return Rec("garbage_headers", tok, tok.encode(), b'{"event_type":"page"}', headers)


def _invalid_utf8_headers(rng: random.Random, tok: str, good: bytes) -> Rec:
    headers: Headers = [
        ("eg-request-id", b"\xff" + tok.encode() + b"\xfe\xed\xa0\x80"),
        ("eg-endpoint", rng.choice([b"s2s", b"\xffs2s", b"client\x80"])),
        ("eg-token", rng.choice([b"\xff\xfe", b"ch-\xe9"])),
        ("eg-received-at", b"2026-01-01T00:00:00.000Z\xff"),
        ("eg-origin", b"https://\xff.test"), ("eg-user-agent", b"\xc3\x28"),
        ("eg-jwt", b"eyJ\xff.\xfe.\x80"), ("eg-nonce", b"\xff"), ("eg-path", b"/\xff"),
    ]
    return Rec("invalid_utf8_headers", tok, None, b'{"event_type":"page"}', headers)


def _wrong_types(rng: random.Random, tok: str, good: bytes) -> Rec:
    value = rng.choice([b"42", b'"a string"', b"null", b"true", b"[1,2,3]", b'{"events":"x"}',
                        b'{"event_type":5}', b'{"events":[null,1,"x",[],{}]}', b"[]", b"{}",
                        b'{"batch":{}}', b'{"event_type":["a"],"event":{"x":[{}]}}',
                        b'{"events":[],"batch":[1]}', b"1e400", b"NaN", b'{"a":1}{"b":2}'])
    return Rec("wrong_types", tok, tok.encode(), value, _base(tok))


def _deep_nesting(rng: random.Random, tok: str, good: bytes) -> Rec:
    depth = rng.choice([1000, 1025, 5000, 100_000])
    value = b"[" * depth + b"]" * depth if rng.random() < 0.5 else b'{"a":' * depth + b"1" + (
        b"}" * depth)
    return Rec("deep_nesting", tok, tok.encode(), value, _base(tok))


def _huge_header(rng: random.Random, tok: str, good: bytes) -> Rec:
    name = rng.choice(["eg-user-agent", "eg-user-agent", "eg-origin", "eg-path", "eg-query",
                       "eg-jwt", "eg-ip", "eg-token"])
    headers = [*_base(tok, b"client"), (name, b"u" * HUGE_HEADER)]
    return Rec("huge_header", tok, tok.encode(), b'{"event_type":"page"}', headers)


def _many_headers(rng: random.Random, tok: str, good: bytes) -> Rec:
    headers = [*_base(tok), *((f"eg-x{i}", b"v") for i in range(2000))]
    return Rec("many_headers", tok, tok.encode(), b'{"event_type":"page"}', headers)


def _huge_batch(rng: random.Random, tok: str, good: bytes) -> Rec:
    value = orjson.dumps([{"e": i % 10} for i in range(5000)])
    return Rec("huge_batch", tok, tok.encode(), value, _base(tok))


def _over_limit(rng: random.Random, tok: str, good: bytes) -> Rec:
    value = b'{"s":"' + b"z" * (MAX_BODY + 1000) + b'"}'
    return Rec("over_max_body", tok, tok.encode(), value, _base(tok))


def _huge_request_id(rng: random.Random, tok: str, good: bytes) -> Rec:
    headers = [("eg-request-id", tok.encode() + b"r" * 100_000), ("eg-endpoint", b"s2s")]
    return Rec("huge_request_id", tok, None, b'{"event_type":"page"}', headers)


def _huge_accepted(rng: random.Random, tok: str, good: bytes) -> Rec:
    """A valid sender with huge context and event type: the outputs (audit-log keeps the
    broker's default 1 MiB max.message.bytes) would be too large unless bounded."""
    headers: Headers = [("eg-request-id", tok.encode()), ("eg-endpoint", b"s2s"),
                        ("eg-token", good), ("eg-user-agent", b"u" * HUGE_HEADER),
                        ("eg-origin", b"o" * HUGE_HEADER), ("eg-path", b"/" * HUGE_HEADER)]
    etype = rng.choice([10, 300_000, 500_000])
    value = orjson.dumps({"event_type": "t" * etype})
    return Rec("huge_accepted", tok, tok.encode(), value, headers, may_accept=True)


def _huge_key(rng: random.Random, tok: str, good: bytes) -> Rec:
    key = tok.encode() + b"k" * rng.choice([5000, 100_000])
    headers: Headers = [("eg-endpoint", b"s2s"), ("eg-token", good)]
    return Rec("huge_key", tok, key, b'{"event_type":"page"}', headers, may_accept=True)


# class -> (generator, how many); the big ones are few, each record stays under 2 MiB
CLASSES: dict[str, tuple[Callable[[random.Random, str, bytes], Rec], int]] = {
    "garbage_value": (_garbage_value, 1000),
    "empty_value": (_empty_value, 400),
    "no_headers_no_key": (_no_headers_no_key, 300),
    "no_headers_utf8_key": (_no_headers_utf8_key, 300),
    "non_utf8_key": (_non_utf8_key, 400),
    "garbage_headers": (_garbage_headers, 1000),
    "invalid_utf8_headers": (_invalid_utf8_headers, 500),
    "wrong_types": (_wrong_types, 1000),
    "deep_nesting": (_deep_nesting, 200),
    "many_headers": (_many_headers, 10),
    "huge_header": (_huge_header, 8),
    "huge_batch": (_huge_batch, 3),
    "over_max_body": (_over_limit, 3),
    "huge_request_id": (_huge_request_id, 3),
    "huge_accepted": (_huge_accepted, 6),
    "huge_key": (_huge_key, 20),
}


def records(good: bytes) -> list[Rec]:
    """Every class's records, shuffled so the huge ones sit between small ones on every
    partition; record i carries the token `rf<i>x` wherever its shape has room for one."""
    rng = random.Random(SEED)
    only = [c for c in os.environ.get("CHAOS_RAW_CLASSES", "").split(",") if c]
    names = [name for name, (_, n) in CLASSES.items() if not only or name in only
             for _ in range(n)]
    rng.shuffle(names)
    return [CLASSES[name][0](rng, f"rf{i}x", good) for i, name in enumerate(names)]


@pytest.mark.chaos
@pytest.mark.timeout(600)
def test_worker_survives_5000_garbage_raw_events(chaos_stack: ChaosStack) -> None:
    cs = chaos_stack
    cs.ingest()
    worker = cs.worker()
    recs = records(secrets.digest(cs.secrets["load"]).encode())
    assert len(recs) >= RECORDS or os.environ.get("CHAOS_RAW_CLASSES")
    topic = cs.prefix + "raw-events"

    async def go() -> None:
        await cs.wait_deciding([worker], timeout_s=120)
        async with cs.collector() as col:
            t0 = time.monotonic()
            producer = AIOKafkaProducer(bootstrap_servers=cs.bootstrap, acks="all",
                                        max_request_size=4 * 1024 * 1024, linger_ms=5)
            await producer.start()
            try:
                futures = [await producer.send(topic, r.value, key=r.key, headers=r.headers)
                           for r in recs]
                for r, meta in zip(recs, await asyncio.gather(*futures), strict=True):
                    r.partition, r.offset = meta.partition, meta.offset
            finally:
                await producer.stop()
            produced_s = time.monotonic() - t0
            per_partition = Counter(r.partition for r in recs)
            print(f"[chaos] produced {len(recs)} garbage records in {produced_s:.1f}s, "
                  f"per partition {dict(sorted(per_partition.items()))}")

            # The worker must keep deciding: normal events through HTTP, after the garbage.
            ok_ids: dict[str, str] = {}
            async with aiohttp.ClientSession() as s:
                for i in range(NORMAL):
                    async with s.post(f"{cs.url}/api/v1/s2s/event",
                                      data=orjson.dumps({"event_type": "page", "n": i}),
                                      headers={"X-Auth-Token": cs.secrets["load"]}) as resp:
                        assert resp.status == 200, await resp.text()
                        ok_ids[(await resp.json())["request_id"]] = "ok"
            normal_s, normal_left = await drain(col, ok_ids, PROMPT_S, worker.alive)
            print(f"[chaos] {NORMAL} normal events after the garbage: "
                  f"{NORMAL - len(normal_left)} decided, waited {normal_s:.1f}s "
                  f"(limit {PROMPT_S:.0f}s)")

            def unmatched() -> list[Rec]:
                audit_ids = {rid for rid, got in list(col.by_id.items()) if got.get("audit-log")}
                tokens = {t for rid in audit_ids for t in TOKEN_RE.findall(rid)}
                bases = {rid.rsplit(":", 1)[0] for rid in audit_ids} | audit_ids
                return [r for r in recs
                        if not ((r.token and r.token in tokens)
                                or f"{topic}-{r.partition}-{r.offset}" in bases)]

            deadline = time.monotonic() + GARBAGE_WAIT_S
            left = unmatched()
            while left and time.monotonic() < deadline and worker.alive():
                await asyncio.sleep(1)
                left = unmatched()
            garbage_s = time.monotonic() - t0

            by_class: dict[str, Counter[str]] = defaultdict(Counter)
            accepted_garbage = []
            token_class = {r.token: r.cls for r in recs if r.token}
            may_accept = {r.cls for r in recs if r.may_accept}
            fallback_class = {f"{topic}-{r.partition}-{r.offset}": r.cls for r in recs}
            for rid, got in list(col.by_id.items()):
                if rid in ok_ids:
                    continue
                found = TOKEN_RE.findall(rid)
                cls = (token_class.get(found[0]) if found
                       else fallback_class.get(rid.rsplit(":", 1)[0], fallback_class.get(rid)))
                if cls is None:
                    continue  # a readiness probe
                for audit in got.get("audit-log", []):
                    by_class[cls][f"{audit['decision']}:{audit['reason']}"] += 1
                    if audit["decision"] != "rejected" and cls not in may_accept:
                        accepted_garbage.append((cls, rid[:60]))

        missed = Counter(r.cls for r in left)
        print(f"[chaos] garbage decided: {len(recs) - len(left)}/{len(recs)} records after "
              f"{garbage_s:.1f}s; undecided by class {dict(missed)}")
        for r in left[:5]:
            print(f"[chaos]   undecided: {r.cls} token={r.token} p{r.partition}@{r.offset} "
                  f"headers={[(n, len(v)) for n, v in r.headers][:6]}")
        stuck = sorted({(r.partition, min(x.offset for x in left if x.partition == r.partition))
                        for r in left})
        if stuck:
            print(f"[chaos]   first undecided offset per partition: {stuck}")
        print(f"[chaos] {'class':22} audit records by decision:reason")
        for cls in CLASSES:
            print(f"[chaos] {cls:22} {dict(by_class[cls].most_common())}")
        log = cs.log_text("worker")
        print(f"[chaos] worker alive={worker.alive()}, tracebacks in its log: "
              f"{log.count('Traceback')}, log {worker.log}")

        assert worker.alive(), f"the worker died:\n{worker.tail()}"
        assert not normal_left, (f"{len(normal_left)} of {NORMAL} normal events undecided "
                                 f"{PROMPT_S:.0f}s after the garbage")
        assert not left, f"{len(left)} garbage records without an audit record: {dict(missed)}"
        assert not accepted_garbage, f"garbage accepted: {accepted_garbage[:5]}"

    asyncio.run(go())
