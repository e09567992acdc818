"""100,000+ hostile HTTP inputs against one ingest process, Kafka up.

Intended behaviour, asserted for every input: an answer (or, for input that is
not HTTP at all, a closed connection) within the timeout, never a 5xx, the
documented 4xx where the input class has one (400 for a body that is not JSON,
413 for a body over `max_body_bytes` or a batch over `max_batch_events`), no
traceback in the ingest's log, bounded RSS, and /health still answering.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator

import aiohttp
import orjson
import pytest

from tests.chaos.conftest import ChaosStack, vm_rss_kb
from tests.chaos.rawhttp import CLOSED, TIMEOUT, Input, Lane, request

INPUTS = 100_000
LANES = 48
TIMEOUT_S = 30.0
SEED = 8
MAX_BODY = 1024 * 1024  # the ingest's default ingest.max_body_bytes
MAX_BATCH = 500  # the ingest's default ingest.max_batch_events
RSS_GROWTH_BOUND_MB = 200
TRACEBACKS_ALLOWED = 0

S2S = "/api/v1/s2s/event"
OK = frozenset({200})
BAD = frozenset({400})
TOO_LARGE = frozenset({413})
METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "CONNECT",
           "PROPFIND", "MKCOL", "LOCK", "BREW", "post", "G-E-T", "X" * 300)
PATHS = ("/", "/api/v1/event", "/api/v1/events", "/api/v1/s2s/events", "/api.", "/api.x/y/z",
         "//api/v1/event", "/api/v1/event/", "/api/v1/../v1/event", "/../../etc/passwd",
         "/api/v1/event%00", "/api/v1/%ff%fe", "/api/v1/event;x=1", "/%2e%2e/%2e%2e/",
         "/api/v1/s2s/event#frag", "/api.\u00e9v\u00e9nement", "/" + "a/" * 2000,
         "/api." + "x" * 9000, "*", "http://evil.test/api/v1/event", "/api/v1/admin/keys",
         "/api/v1/admin/../../health", "/health?x=" + "y" * 100, "/api/v1/event?token")
ENCODINGS = ("gzip", "deflate", "br", "zstd", "compress", "identity", "x-nope", "gzip, gzip",
             "GZIP", "", "\u00e9")


def _event(rng: random.Random) -> dict[str, object]:
    return {"event_type": rng.choice(["page", "track", "form.submit"]), "n": rng.randrange(1000)}


def _valid(rng: random.Random, token: str) -> Input:
    body = orjson.dumps(_event(rng) if rng.random() < 0.7 else [_event(rng) for _ in range(3)])
    return Input("valid", request("POST", f"{S2S}?token={token}", [], body), allowed=OK)


def _random_bytes(rng: random.Random, _: str) -> Input:
    data = rng.randbytes(rng.randrange(1, 2048))
    if rng.random() < 0.7:  # a complete request head, so the parser answers at once
        data = rng.choice([b"POST ", b"GET /", b"HTTP/1.1 ", b"\r\n", b""]) + data + b"\r\n\r\n"
    return Input("random_bytes", data, raw=True)


def _bad_request_line(rng: random.Random, _: str) -> Input:
    data = rng.choice([
        b"POST /api/v1/event HTTP/9.9\r\nHost: x\r\n\r\n",
        b"POST /api/v1/event\r\n\r\n",
        b"POST  /api/v1/event  HTTP/1.1\r\n\r\n",
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
        b"POST /api/v1/event HTTP/1.1\nHost: x\n\n{}",
        b"POST /api/v1/event HTTP/1.0\r\nContent-Length: 2\r\n\r\n{}",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + rng.randbytes(64),  # a TLS hello
        b"POST /api/v1/event HTTP/1.1\r\n" + b"X: y\r\n" * 200 + b"\r\n",
        b"POST /api/v1/event HTTP/1.1\r\n" + b"".join(b"X-%d: y\r\n" % i for i in range(500))
        + b"\r\n",
        b"POST /api/v1/event HTTP/1.1\r\nHost: x\r\n folded: continuation\r\n\r\n",
        b"POST /api/v1/event HTTP/1.1\r\nNo-Colon-Header\r\n\r\n",
        b"POST /api/v1/event HTTP/1.1\r\n: empty-name\r\n\r\n",
        b"POST /api/v1/event HTTP/1.1\r\nContent-Length: 10\r\n\r\n{}",  # short body, then EOF
    ])
    return Input("bad_request_line", data, raw=True)


def _truncated_json(rng: random.Random, token: str) -> Input:
    full = orjson.dumps({"event_type": "page", "props": {"a": [1, 2, {"b": "c" * 20}]},
                         "n": rng.randrange(10**6)})
    body = full[:rng.randrange(0, len(full))]
    return Input("truncated_json", request("POST", f"{S2S}?token={token}", [], body),
                 allowed=BAD)


def _deep_nesting(rng: random.Random, token: str) -> Input:
    depth = rng.choice([10, 100, 500, 1000, 1024, 1025, 2000, 10_000, 100_000])
    opener, closer = rng.choice([(b"[", b"]"), (b'{"a":', b"}")])
    body = opener * depth + b"1" + closer * depth
    allowed = TOO_LARGE if len(body) > MAX_BODY else None  # 200 or 400 by depth
    return Input("deep_nesting", request("POST", f"{S2S}?token={token}", [], body),
                 allowed=allowed)


def _huge_string(rng: random.Random, token: str) -> Input:
    size = rng.choice([100_000, 500_000, MAX_BODY - 100, MAX_BODY + 10, 1_500_000])
    body = b'{"event_type":"page","s":"' + b"x" * size + b'"}'
    allowed = TOO_LARGE if len(body) > MAX_BODY else OK
    return Input("huge_string", request("POST", f"{S2S}?token={token}", [], body),
                 allowed=allowed)


def _invalid_utf8(rng: random.Random, token: str) -> Input:
    bad = rng.choice([b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80", b"\x80"])
    body = b'{"event_type":"' + bad + b'","n":%d}' % rng.randrange(1000)
    return Input("invalid_utf8_body", request("POST", f"{S2S}?token={token}", [], body),
                 allowed=BAD)


def _nan_infinity(rng: random.Random, token: str) -> Input:
    lit = rng.choice([b"NaN", b"Infinity", b"-Infinity", b"nan", b"inf", b"+1", b"01", b".5"])
    body = b'{"event_type":"page","v":' + lit + b"}"
    return Input("nan_infinity", request("POST", f"{S2S}?token={token}", [], body),
                 allowed=BAD)


def _big_number(rng: random.Random, token: str) -> Input:
    num = rng.choice([b"1e400", b"-1e400", b"1" + b"0" * 5000, b"1e-400", b"9" * 400 + b".9",
                      b"123456789012345678901234567890"])
    body = b'{"event_type":"page","v":' + num + b"}"
    return Input("big_number", request("POST", f"{S2S}?token={token}", [], body))


def _duplicate_keys(rng: random.Random, token: str) -> Input:
    body = b'{"event_type":"page","event_type":"form.submit","a":1,"a":{"a":2},"n":%d}' % (
        rng.randrange(1000))
    return Input("duplicate_keys", request("POST", f"{S2S}?token={token}", [], body),
                 allowed=frozenset({200, 400}))


def _null_byte_header(rng: random.Random, token: str) -> Input:
    name = rng.choice([b"User-Agent", b"Origin", b"X-Auth-Token", b"X-Nonce", b"X-Custom"])
    value = rng.choice([b"a\x00b", b"\x00", b"tok\x00en", b"x" * 10 + b"\x00"])
    data = request("POST", f"{S2S}?token={token}", [(name.decode(), value)], b'{"a":1}')
    return Input("null_byte_header", data, raw=True)


def _header_invalid_utf8(rng: random.Random, token: str) -> Input:
    name = rng.choice(["User-Agent", "Origin", "X-Auth-Token", "X-Nonce", "X-Access-Key",
                       "X-Signature", "X-Timestamp", "Authorization", "api_key", "X-Real-IP",
                       "X-Forwarded-For", "X-Custom"])
    value = rng.choice([b"\xff\xfe", b"caf\xe9", b"\xc3\x28", b"ok\x80ok", b"\xed\xa0\x80"])
    if name == "Authorization":
        value = rng.choice([b"Bearer ", b"Basic "]) + value
    path = rng.choice([f"{S2S}?token={token}", S2S, "/api/v1/event"])
    return Input("header_invalid_utf8",
                 request("POST", path, [(name, value)], b'{"event_type":"page"}'))


def _many_query_params(rng: random.Random, token: str) -> Input:
    count = rng.choice([10, 100, 500, 1000, 3000])
    query = "&".join(f"p{i}={rng.randrange(10**6)}" for i in range(count))
    path = f"{S2S}?token={token}&{query}"
    return Input("many_query_params", request("POST", path, [], b'{"event_type":"page"}'))


def _odd_path(rng: random.Random, token: str) -> Input:
    path = rng.choice(PATHS)
    body = b'{"event_type":"page"}'
    data = request("POST", path, [("X-Auth-Token", token)], body)
    return Input("odd_path", data, raw=not path.isascii())


def _method(rng: random.Random, token: str) -> Input:
    method = rng.choice(METHODS)
    path = rng.choice([f"{S2S}?token={token}", "/api/v1/event", "/health", "/nope"])
    body = rng.choice([b"", b'{"event_type":"page"}'])
    return Input("method", request(method, path, [], body), head=method == "HEAD",
                 raw=method == "CONNECT")


def _bad_content_encoding(rng: random.Random, token: str) -> Input:
    enc = rng.choice(ENCODINGS)
    body = rng.choice([b'{"event_type":"page"}', rng.randbytes(64),
                       b"\x1f\x8b\x08\x00" + rng.randbytes(32)])  # a gzip header, then junk
    data = request("POST", f"{S2S}?token={token}", [("Content-Encoding", enc)], body)
    return Input("bad_content_encoding", data, raw=not enc.isascii())


def _long_header(rng: random.Random, token: str) -> Input:
    size = rng.choice([8000, 8190, 8191, 16_000, 65_536, 200_000])
    name = rng.choice(["User-Agent", "Origin", "X-Auth-Token", "Cookie", "X" * size])
    value = "v" * size if not name.startswith("XX") else "v"
    return Input("long_header_line",
                 request("POST", f"{S2S}?token={token}", [(name, value)], b'{"a":1}'))


def _body_over_limit(rng: random.Random, token: str) -> Input:
    how = rng.choice(["declared", "declared", "declared", "sent", "chunked"])
    path = f"{S2S}?token={token}"
    if how == "declared":  # a Content-Length over the limit; the body never follows
        data = request("POST", path, [("Content-Length", str(MAX_BODY + rng.randrange(1, 10**9)))],
                       b"", content_length=False)
        return Input("body_over_limit", data, raw=True, allowed=TOO_LARGE)
    body = b'{"s":"' + b"y" * (MAX_BODY + 1000) + b'"}'
    if how == "sent":
        return Input("body_over_limit", request("POST", path, [], body), allowed=TOO_LARGE)
    chunk = 256 * 1024
    chunks = b"".join(b"%x\r\n" % len(body[i:i + chunk]) + body[i:i + chunk] + b"\r\n"
                      for i in range(0, len(body), chunk)) + b"0\r\n\r\n"
    data = request("POST", path, [("Transfer-Encoding", "chunked")], b"",
                   content_length=False) + chunks
    return Input("body_over_limit", data, allowed=TOO_LARGE)


def _batch_over_limit(rng: random.Random, token: str) -> Input:
    count = rng.choice([MAX_BATCH + 1, 1000, 5000, 20_000])
    events = [{"e": 1}] * count
    doc: object = events if rng.random() < 0.5 else {rng.choice(["events", "batch"]): events}
    return Input("batch_over_limit",
                 request("POST", f"{S2S}?token={token}", [], orjson.dumps(doc)),
                 allowed=TOO_LARGE)


def _bad_framing(rng: random.Random, token: str) -> Input:
    path = f"{S2S}?token={token}"
    body = b'{"event_type":"page"}'
    data = rng.choice([
        request("POST", path, [("Content-Length", "5"), ("Content-Length", "21")], body, False),
        request("POST", path, [("Content-Length", "-1")], body, False),
        request("POST", path, [("Content-Length", "abc")], body, False),
        request("POST", path, [("Content-Length", "1" * 40)], body, False),
        request("POST", path, [("Transfer-Encoding", "chunked"), ("Content-Length", "21")],
                b"15\r\n" + body + b"\r\n0\r\n\r\n", False),
        request("POST", path, [("Transfer-Encoding", "chunked")], b"zz\r\n" + body, False),
        request("POST", path, [("Transfer-Encoding", "gzip, chunked")], body, False),
        request("POST", path, [("Transfer-Encoding", "chunked")],
                b"ffffffffffffffffff\r\n" + body, False),
    ])
    return Input("bad_framing", data, raw=True)


# class -> (generator, weight): ~100k inputs, mostly small; the megabyte ones are few.
CLASSES: dict[str, tuple[Callable[[random.Random, str], Input], float]] = {
    "valid": (_valid, 10),
    "random_bytes": (_random_bytes, 8),
    "bad_request_line": (_bad_request_line, 4),
    "truncated_json": (_truncated_json, 8),
    "deep_nesting": (_deep_nesting, 3),
    "huge_string": (_huge_string, 0.15),
    "invalid_utf8_body": (_invalid_utf8, 7),
    "nan_infinity": (_nan_infinity, 6),
    "big_number": (_big_number, 5),
    "duplicate_keys": (_duplicate_keys, 5),
    "null_byte_header": (_null_byte_header, 5),
    "header_invalid_utf8": (_header_invalid_utf8, 7),
    "many_query_params": (_many_query_params, 3),
    "odd_path": (_odd_path, 6),
    "method": (_method, 6),
    "bad_content_encoding": (_bad_content_encoding, 5),
    "long_header_line": (_long_header, 2),
    "body_over_limit": (_body_over_limit, 0.3),
    "batch_over_limit": (_batch_over_limit, 1.5),
    "bad_framing": (_bad_framing, 4),
}


def inputs(count: int, token: str) -> Iterator[Input]:
    rng = random.Random(SEED)
    names = list(CLASSES)
    weights = [CLASSES[n][1] for n in names]
    for _ in range(count):
        yield CLASSES[rng.choices(names, weights)[0]][0](rng, token)


@pytest.mark.chaos
@pytest.mark.timeout(600)
def test_ingest_survives_100k_hostile_inputs(chaos_stack: ChaosStack) -> None:
    cs = chaos_stack
    ingest = cs.ingest()
    log_start = len(cs.log_text("ingest"))
    rss_before = vm_rss_kb(ingest.popen.pid)
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    violations: dict[str, list[str]] = defaultdict(list)
    slowest: list[tuple[float, str]] = [(0.0, "")]

    async def go() -> tuple[float, str]:
        feed = inputs(INPUTS, cs.secrets["load"])

        async def lane() -> None:
            ln = Lane("127.0.0.1", cs.port, TIMEOUT_S)
            try:
                for inp in feed:  # one shared iterator: each input goes to one lane
                    t = time.monotonic()
                    status = await ln.send(inp)
                    took = time.monotonic() - t
                    if took > slowest[0][0]:
                        slowest[0] = (took, f"{inp.cls} -> {status}")
                    counts[inp.cls][status] += 1
                    problem = _problem(inp, status)
                    if problem and len(violations[problem]) < 3:
                        violations[problem].append(repr(inp.data[:160]))
                    elif problem:
                        violations[problem].append("")
            finally:
                await ln.close()

        t0 = time.monotonic()
        await asyncio.gather(*(lane() for _ in range(LANES)))
        took = time.monotonic() - t0
        async with aiohttp.ClientSession() as s, s.get(
                cs.url + "/health", timeout=aiohttp.ClientTimeout(total=10)) as r:
            health = f"{r.status} {await r.text()}"
        return took, health

    took, health = asyncio.run(go())
    rss_after = vm_rss_kb(ingest.popen.pid)
    log = cs.log_text("ingest")[log_start:]
    tracebacks = log.count("Traceback")
    total = sum(sum(c.values()) for c in counts.values())
    print(f"[chaos] {total} inputs in {took:.1f}s ({total / took:.0f}/s) over {LANES} lanes; "
          f"slowest {slowest[0][0]:.2f}s ({slowest[0][1]})")
    print(f"[chaos] {'class':22} {'n':>6}  statuses")
    for cls in CLASSES:
        c = counts[cls]
        print(f"[chaos] {cls:22} {sum(c.values()):>6}  {dict(sorted(c.items()))}")
    all_statuses: Counter[str] = Counter()
    for c in counts.values():
        all_statuses.update(c)
    print(f"[chaos] all: {dict(sorted(all_statuses.items()))}")
    print(f"[chaos] ingest RSS before {rss_before / 1024:.0f} MB, after {rss_after / 1024:.0f} MB "
          f"(bound +{RSS_GROWTH_BOUND_MB} MB); /health at the end: {health}")
    print(f"[chaos] tracebacks in the ingest log: {tracebacks} (allowed {TRACEBACKS_ALLOWED})")
    for problem, examples in sorted(violations.items()):
        print(f"[chaos] VIOLATION {problem}: {len(examples)}x, e.g. "
              f"{[e for e in examples if e][:3]}")
    for kind, first in _first_tracebacks(log):
        print(f"[chaos] traceback {kind}x: {first}")

    assert total >= INPUTS
    assert ingest.alive(), f"the ingest died:\n{ingest.tail()}"
    assert health.startswith("200"), health
    assert not all_statuses[TIMEOUT], f"{all_statuses[TIMEOUT]} inputs hung > {TIMEOUT_S}s"
    assert not violations, f"violations: { {p: len(e) for p, e in violations.items()} }"
    assert tracebacks <= TRACEBACKS_ALLOWED, f"{tracebacks} tracebacks in {ingest.log}"
    assert rss_after < rss_before + RSS_GROWTH_BOUND_MB * 1024, (rss_before, rss_after)


def _problem(inp: Input, status: str) -> str | None:
    """What is wrong with this answer to this input, if anything."""
    if status == TIMEOUT:
        return f"{inp.cls}: hang"
    if status == CLOSED:
        # Only input that is not a complete HTTP request may go unanswered.
        return None if inp.raw else f"{inp.cls}: closed without an answer"
    if not status.isdigit():
        return f"{inp.cls}: garbled answer {status}"
    code = int(status)
    if code >= 500:
        return f"{inp.cls}: {code}"  # Kafka is up: not even a 503
    if inp.allowed is not None and code not in inp.allowed:
        return f"{inp.cls}: {code}, expected {sorted(inp.allowed)}"
    return None


def _first_tracebacks(log: str) -> list[tuple[int, str]]:
    """Each distinct traceback's last line, with how often it appears."""
    kinds: Counter[str] = Counter()
    lines = log.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("Traceback"):
            j = i + 1
            while j < len(lines) and (lines[j].startswith(" ") or not lines[j].strip()):
                j += 1
            kinds[lines[j][:200] if j < len(lines) else "?"] += 1
    return [(n, k) for k, n in kinds.most_common(8)]
