"""/metrics, /health and /ready of a real worker and a real ingest on the real broker
(issue 11). Own topic prefix and consumer group: nothing else runs in this stack."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import secrets
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from tests.integration.conftest import PREFIX
from tests.unit.metrics.scrape import Samples, parse, value
from workers import topics
from workers.cli.decisions import Collector
from workers.client import signed_headers
from workers.devstack.processes import Proc, Stack, free_port
from workers.paths import cache_dir

RUN = secrets.token_hex(3)
IDS = {name: f"mk{RUN}-{name}" for name in ("web", "backend", "signer")}
SECRETS = {name: f"it-metrics-{name}-{secrets.token_hex(8)}"
           for name in ("web", "backend", "access", "unknown")}
ORIGIN = "https://shop.metrics.test"
RANDOM_PATH = f"/api.r{secrets.token_hex(5)}"  # Jitsu's randomized URLs: never a label
S2S = "/api/v1/s2s/event"


@dataclass
class Stackup:
    stack: Stack
    prefix: str
    ingest: str  # base URL
    web: str  # the worker's web port, base URL
    worker: Proc
    early: list[tuple[int, dict[str, Any], Samples]]  # /ready answers before it was 200


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


@pytest.fixture(scope="module")
def stackup(bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stackup]:
    prefix = PREFIX.rstrip(".") + "-metrics."
    asyncio.run(topics.apply(bootstrap, topics.load_specs(), prefix))
    config = tmp_path_factory.mktemp("metrics") / "eventguard.yaml"
    config.write_text(yaml.safe_dump({
        "server": {"api_keys_reload_sec": 1},
        "api_keys": [
            {"id": IDS["web"], "client_secret": SECRETS["web"], "origins": ["shop.metrics.test"]},
            {"id": IDS["backend"], "server_secret": SECRETS["backend"]},
            {"id": IDS["signer"], "access_key": IDS["signer"],
             "access_secret": SECRETS["access"]},
        ],
        # Nothing listens there: one failed JWKS fetch at start-up, for the counter.
        "jwt_providers": [{"id": "idp", "issuer": "https://idp.metrics.test/",
                           "jwks_url": f"http://127.0.0.1:{free_port()}/jwks"}],
    }))
    stack = Stack(cache_dir() / "test-logs" / prefix.rstrip("."), bootstrap, prefix)
    web_port, port = free_port(), free_port()
    try:
        worker = stack.worker(config, web_port=web_port)
        web = f"http://127.0.0.1:{web_port}"
        early = _until_ready(web, worker)
        stack.ingest(config, port)
        yield Stackup(stack, prefix, f"http://127.0.0.1:{port}", web, worker, early)
    finally:
        stack.stop()


def _until_ready(web: str, worker: Proc) -> list[tuple[int, dict[str, Any], Samples]]:
    """Poll /ready from the moment the web server answers until it says 200; keep the
    answers before that, each with a scrape of /metrics taken right after it."""
    early: list[tuple[int, dict[str, Any], Samples]] = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert worker.alive(), worker.tail()
        with contextlib.suppress(OSError):
            status, body = get(web + "/ready")
            if status == 200:
                return early
            _, scraped = get(web + "/metrics")
            early.append((status, json.loads(body), parse(scraped.decode())))
        time.sleep(0.05)
    raise AssertionError(f"worker never ready; last answers {early[-3:]}\n{worker.tail()}")


def _post(base: str, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, str | None]:
    async def go() -> tuple[int, str | None]:
        async with aiohttp.ClientSession() as s, s.post(base + path, data=body,
                                                        headers=headers) as r:
            got = await r.json(content_type=None)
            return r.status, got.get("request_id") if isinstance(got, dict) else None
    return asyncio.run(go())


def test_health_and_ready_on_the_worker_web_port(stackup: Stackup) -> None:
    assert stackup.early, "the worker's /ready was never seen before it was ready"
    status, body, scraped = stackup.early[0]
    assert status == 503 and body["status"] == "not ready" and body["reason"]
    assert set(body["checks"]) == {"partitions_assigned", "key_table_current",
                                   "nonces_caught_up", "key_source_loaded"}
    assert value(scraped, "eventguard_worker_ready") == 0
    status, raw = get(stackup.web + "/health")
    assert status == 200 and json.loads(raw) == {"status": "ok"}
    status, raw = get(stackup.web + "/ready")
    assert status == 200 and json.loads(raw)["status"] == "ok"
    # Faust's /table pages would serve the key table's values (digests, sealed secrets),
    # and /router the cluster's layout.
    assert get(stackup.web + "/table/")[0] == 404
    assert get(stackup.web + "/router/")[0] == 404


def test_counts_move_by_the_right_labels_and_hold_no_secret(stackup: Stackup) -> None:
    # Ready means the key table was read to its end; the leader publishes the config
    # file's keys to it just after, and /metrics shows when they arrived.
    deadline = time.monotonic() + 60
    while value(worker_before := parse(get(stackup.web + "/metrics")[1].decode()),
                "eventguard_keys") != 3:
        assert time.monotonic() < deadline, value(worker_before, "eventguard_keys")
        time.sleep(0.2)
    sent: list[tuple[str, str, str]] = []  # (request id, decision, reason)

    def event(path: str, headers: dict[str, str], expect: str) -> None:
        status, rid = _post(stackup.ingest, path, b'{"event_type":"page"}', headers)
        assert status == 200 and rid, (path, status)
        decision, reason = expect.split("/")
        sent.append((rid, decision, reason))

    for _ in range(3):
        event(S2S, {"X-Auth-Token": SECRETS["backend"]}, "accepted/ok")
    for _ in range(2):
        event(S2S, {"X-Auth-Token": SECRETS["unknown"]}, "rejected/unknown_key")
    event(f"{RANDOM_PATH}?p_x={SECRETS['web']}", {"Origin": ORIGIN}, "accepted/ok")
    event(f"/api/v1/event?token={SECRETS['web']}", {"Origin": "https://evil.test"},
          "rejected/origin_not_allowed")
    body = b'{"event_type":"page"}'
    event(S2S, signed_headers(IDS["signer"], SECRETS["access"], body, S2S), "accepted/ok")
    assert _post(stackup.ingest, f"/nowhere/{SECRETS['backend']}", b"{}", {})[0] == 404
    assert _post(stackup.ingest, S2S, b"not json", {})[0] == 400

    async def decided() -> None:
        async with Collector(stackup.stack.bootstrap, from_beginning=True,
                             prefix=stackup.prefix) as col:
            ok = await col.wait(lambda: all(col.decided(rid) for rid, *_ in sent), 60)
            assert ok, [rid for rid, *_ in sent if not col.decided(rid)]
            for rid, decision, reason in sent:
                [audit] = col.by_id[rid]["audit-log"]
                assert (audit["decision"], audit["reason"]) == (decision, reason), audit
    asyncio.run(decided())

    text = get(stackup.web + "/metrics")[1].decode()
    worker = parse(text)

    def moved(reason: str, method: str, decision: str) -> float:
        labels = {"decision": decision, "reason": reason, "method": method}
        return ((value(worker, "eventguard_decisions_total", **labels) or 0)
                - (value(worker_before, "eventguard_decisions_total", **labels) or 0))

    assert moved("ok", "server_secret", "accepted") == 3
    assert moved("unknown_key", "none", "rejected") == 2
    assert moved("ok", "client_secret", "accepted") == 1
    assert moved("origin_not_allowed", "client_secret", "rejected") == 1
    assert moved("ok", "hmac", "accepted") == 1
    count = "eventguard_decision_duration_seconds_count"
    assert (value(worker, count) or 0) - (value(worker_before, count) or 0) == len(sent)
    assert value(worker, "eventguard_keys") == 3
    assert value(worker, "eventguard_key_table_lag") == 0
    assert value(worker, "eventguard_key_table_stalls_total") == 0
    assert (value(worker, "eventguard_nonces") or 0) >= 1
    assert value(worker, "eventguard_worker_ready") == 1
    assert (value(worker, "eventguard_jwks_fetches_total", outcome="failed") or 0) >= 1
    raw = stackup.prefix + "raw-events"
    assert value(worker, "eventguard_assigned_partitions", topic=raw) == 4
    assert (value(worker, "eventguard_topic_messages_sent_total",
                  topic=f"topic.{stackup.prefix}audit-log") or 0) >= len(sent)
    assert (value(worker, "eventguard_producer_send_latency_count") or 0) >= 1
    assert (value(worker, "eventguard_consumer_commit_latency_count") or 0) >= 1
    assert (value(worker, "eventguard_rebalances_total") or 0) >= 1
    _lag_drops_to_zero(stackup.web, raw)

    ingest_text = get(stackup.ingest + "/metrics")[1].decode()
    ingest = parse(ingest_text)
    requests = "eventguard_ingest_requests_total"
    assert value(ingest, requests, route=S2S, status="200") == 6
    assert value(ingest, requests, route=S2S, status="400") == 1
    assert value(ingest, requests, route="/api.{name}", status="200") == 1
    assert value(ingest, requests, route="/api/v1/event", status="200") == 1
    assert value(ingest, requests, route="/{tail}", status="404") == 1
    assert value(ingest, "eventguard_ingest_kafka_ack_seconds_count") == len(sent)
    assert value(ingest, "eventguard_ingest_body_bytes_count") == len(sent) + 1  # + bad JSON
    assert value(ingest, "eventguard_ingest_unavailable_total") == 0

    for scrape in (text, ingest_text):
        assert RANDOM_PATH not in scrape
        for secret in SECRETS.values():
            assert secret not in scrape
            assert hashlib.sha256(secret.encode()).hexdigest() not in scrape
        assert "sha256" not in scrape and "fernet" not in scrape
        for key_id in IDS.values():
            assert key_id not in scrape


def _lag_drops_to_zero(web: str, topic: str) -> None:
    """Once the decided events are committed (every 0.5 s), the partitions that had any
    show a lag of 0; a partition that never got a commit has no lag sample."""
    deadline = time.monotonic() + 15
    while True:
        lags = {labels: v for (name, labels), v in parse(get(web + "/metrics")[1].decode())
                .items() if name == "eventguard_consumer_lag" and ("topic", topic) in labels}
        if lags and not any(lags.values()):
            return
        assert time.monotonic() < deadline, lags
        time.sleep(0.5)


def test_ingest_ready_is_false_while_kafka_is_unreachable(stackup: Stackup,
                                                          tmp_path: Path) -> None:
    closed = f"127.0.0.1:{free_port()}"  # nothing listens there
    config = tmp_path / "eventguard.yaml"
    config.write_text("api_keys: []\n")
    port = free_port()
    stack = Stack(stackup.stack.logs, closed, stackup.prefix)
    proc = stack.process("ingest-no-kafka", [sys.executable, "-m", "workers.cli", "ingest",
                                             "--config", str(config), "--port", str(port)])
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.alive(), proc.tail()
            with contextlib.suppress(OSError):
                ready = get(base + "/ready")
                break
            assert time.monotonic() < deadline, proc.tail()
            time.sleep(0.2)
        assert ready[0] == 503 and b"unreachable" in ready[1]
        assert get(base + "/health")[0] == 503  # it answers, but cannot reach Kafka
        assert _post(base, S2S, b"{}", {"X-Auth-Token": "x"})[0] == 503
        ingest = parse(get(base + "/metrics")[1].decode())
        assert value(ingest, "eventguard_ingest_unavailable_total") == 1
        assert value(ingest, "eventguard_ingest_requests_total", route="/ready",
                     status="503") == 1
        assert value(ingest, "eventguard_ingest_kafka_ack_seconds_count") == 0
    finally:
        stack.stop()
