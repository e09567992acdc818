"""Keys change live on two real worker processes: the key CLI, the admin API, a
file source, an HTTP source, restart recovery, and no plaintext secret anywhere.

The tests run in file order on one stack; each leaves the keys as it found them.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from tests.integration.conftest import PREFIX, Env
from tests.integration.test_secrets_at_rest import all_records
from workers import topics
from workers.devstack.processes import Stack, free_port
from workers.paths import cache_dir

ADMIN = "it-admin-" + os.urandom(24).hex()
FILE_SECRET = "it-file-" + os.urandom(6).hex()
SAMPLES = 8  # requests per round: random request ids spread over both workers' partitions


@dataclass
class Live:
    env: Env
    tokens: Path
    workers: list[str] = field(default_factory=list)  # the two workers' log names
    used: set[str] = field(default_factory=set)  # every plaintext secret used, for the scan
    admin_url: str = ""  # the ingest's admin listener

    def keys_cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [sys.executable, "-m", "workers.cli", "keys", "--config", str(self.env.config), *args],
            capture_output=True, text=True, timeout=60,
            env={**os.environ, "EVENTGUARD_TOPIC_PREFIX": self.env.prefix,
                 "KAFKA_BOOTSTRAP_SERVERS": self.env.bootstrap})
        return done

    def shown(self, done: subprocess.CompletedProcess[str]) -> dict[str, str]:
        assert done.returncode == 0, done.stderr
        out = dict(line.strip().split(": ", 1) for line in done.stdout.splitlines()
                   if line.startswith("  "))
        self.remember(out)
        return out

    def remember(self, shown: dict[str, str]) -> None:
        # An access key names a key, like an AWS access key id; it is not a secret.
        self.used.update(v for k, v in shown.items() if k != "access_key")

    def write_config(self, api_keys: Any) -> None:
        self.env.config.write_text(yaml.safe_dump({
            "api_keys": api_keys,
            "server": {"api_keys_reload_sec": 0.5, "admin_token": ADMIN}}))


def round_of(live: Live, secret: str) -> list[tuple[str, str]]:
    """(reason, worker) of SAMPLES server-side requests sent with `secret`."""
    async def go() -> list[tuple[str, str]]:
        async with live.env.collector() as col, aiohttp.ClientSession() as s:
            async def one() -> tuple[str, str]:
                async with s.post(f"{live.env.url}/api/v1/s2s/event",
                                  data=b'{"event_type":"page"}',
                                  headers={"X-Auth-Token": secret}) as r:
                    rid = (await r.json())["request_id"]
                audit = (await col.decision(rid))["audit-log"][0]
                return str(audit["reason"]), str(audit["worker"])
            return list(await asyncio.gather(*(one() for _ in range(SAMPLES))))
    return asyncio.run(go())


def until_both(live: Live, secret: str, want: str, timeout_s: float = 45.0) -> None:
    """Every request in a round decided `want`, by both workers."""
    seen: list[tuple[str, str]] = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        seen = round_of(live, secret)
        if {r for r, _ in seen} == {want} and len({w for _, w in seen}) == 2:
            return
        time.sleep(0.2)
    raise AssertionError(f"wanted {want} from both workers; last round: {seen}")


@pytest.fixture(scope="module")
def live(env: Env, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    tmp = tmp_path_factory.mktemp("live")
    prefix = PREFIX.rstrip(".") + "-live."
    asyncio.run(topics.apply(env.bootstrap, topics.load_specs(), prefix))
    tokens = tmp / "tokens.json"
    tokens.write_text(json.dumps({"tokens": [{"id": "filekey", "server_secret": FILE_SECRET}]}))
    logs = cache_dir() / "test-logs" / prefix.rstrip(".")
    stack = Stack(logs, env.bootstrap, prefix)
    port = free_port()
    sub = Env(env.bootstrap, prefix, f"http://127.0.0.1:{port}", tmp / "eventguard.yaml", logs,
              stack)
    lv = Live(sub, tokens, ["w1", "w2"], {FILE_SECRET, ADMIN})
    lv.write_config(f"file://{tokens}")
    try:
        for name in lv.workers:
            stack.worker(sub.config, name=name)
        lv.admin_url = stack.ingest(sub.config, port).url
        until_both(lv, FILE_SECRET, "ok", timeout_s=120)
        yield lv
    finally:
        stack.stop()


def test_cli_add_rotate_disable_revoke_reach_both_workers(live: Live) -> None:
    first = live.shown(live.keys_cli("add", "clikey", "--server"))["server_secret"]
    until_both(live, first, "ok")
    second = live.shown(live.keys_cli("rotate", "clikey", "--kind", "server",
                                      "--overlap", "3600"))["server_secret"]
    until_both(live, second, "ok")
    until_both(live, first, "ok")  # both overlap during the rollout
    third = live.shown(live.keys_cli("rotate", "clikey", "--kind", "server",
                                     "--overlap", "0"))["server_secret"]
    until_both(live, first, "key_expired")  # no overlap: every earlier secret stops now
    until_both(live, second, "key_expired")
    live.shown(live.keys_cli("disable", "clikey"))
    until_both(live, third, "key_disabled")
    check = live.keys_cli("check", "clikey", third)
    assert (check.returncode, check.stdout.strip()) == (1, "key_disabled: the key is disabled")
    live.shown(live.keys_cli("enable", "clikey"))
    until_both(live, third, "ok")
    listed = live.keys_cli("list").stdout
    assert "clikey" in listed and "source=cli" in listed and "filekey" in listed
    for secret in live.used:
        assert secret not in listed
    live.shown(live.keys_cli("revoke", "clikey"))
    until_both(live, third, "unknown_key")


def test_admin_api_add_and_revoke(live: Live) -> None:
    async def call(method: str, path: str, body: Any = None, token: str = ADMIN
                   ) -> tuple[int, Any]:
        async with aiohttp.ClientSession() as s, s.request(
                method, f"{live.admin_url}/api/v1/admin{path}", json=body,
                headers={"X-Admin-Token": token}) as r:
            return r.status, await r.json()

    status, body = asyncio.run(call("POST", "/keys", {"id": "adm", "server": True,
                                                      "access": True}, token="wrong"))
    assert status == 401 and "secrets" not in body and "admin token" in body["error"]
    status, body = asyncio.run(call("POST", "/keys", {"id": "adm", "server": True,
                                                      "access": True}))
    assert status == 201, body
    live.remember(body["secrets"])
    secret = body["secrets"]["server_secret"]
    assert body["keys"][0]["source"] == "admin" and body["keys"][0]["access_key"]
    until_both(live, secret, "ok")
    assert asyncio.run(call("DELETE", "/keys/filekey"))[0] == 409  # owned by the config
    assert asyncio.run(call("DELETE", "/keys/adm"))[0] == 200
    until_both(live, secret, "unknown_key")


def test_file_source_edit_propagates(live: Live) -> None:
    added = "it-file2-" + os.urandom(6).hex()
    live.used.add(added)
    original = live.tokens.read_text()
    doc = json.loads(original)
    live.tokens.write_text(json.dumps({"tokens": [*doc["tokens"],
                                                  {"id": "file2", "server_secret": added}]}))
    until_both(live, added, "ok")
    live.tokens.write_text(original)
    until_both(live, added, "unknown_key")
    until_both(live, FILE_SECRET, "ok")


class TokenServer(BaseHTTPRequestHandler):
    mode = "200"
    payload = b""
    last_modified = "Mon, 23 Nov 2026 10:00:00 GMT"
    asked_since: list[str] = []  # noqa: RUF012 - shared on purpose with the test

    def do_GET(self) -> None:
        since = self.headers.get("If-Modified-Since")
        if since:
            TokenServer.asked_since.append(since)
        if self.mode == "500":
            self.send_response(500)
            self.end_headers()
        elif self.mode == "304" and since == self.last_modified:
            self.send_response(304)
            self.end_headers()
        else:
            self.send_response(200)
            self.send_header("Last-Modified", self.last_modified)
            self.end_headers()
            self.wfile.write(self.payload)

    def log_message(self, *_: Any) -> None:
        return


def tokens(*pairs: tuple[str, str]) -> bytes:
    return json.dumps({"tokens": [{"id": i, "server_secret": s} for i, s in pairs]}).encode()


def test_http_source_304_200_500(live: Live) -> None:
    one, two = ("it-http1-" + os.urandom(6).hex(), "it-http2-" + os.urandom(6).hex())
    live.used.update((one, two))
    server = ThreadingHTTPServer(("127.0.0.1", 0), TokenServer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        TokenServer.mode, TokenServer.payload = "304", tokens(("filekey", FILE_SECRET),
                                                              ("http", one))
        live.write_config(f"http://127.0.0.1:{server.server_port}/tokens")
        until_both(live, one, "ok")
        deadline = time.monotonic() + 15
        while len(TokenServer.asked_since) < 3 and time.monotonic() < deadline:
            time.sleep(0.1)  # polls at 0.5 s, each answered 304
        assert len(TokenServer.asked_since) >= 3
        assert set(TokenServer.asked_since) == {TokenServer.last_modified}
        until_both(live, one, "ok")  # 304s keep the keys
        TokenServer.mode, TokenServer.payload = "200", tokens(("filekey", FILE_SECRET),
                                                              ("http", two))
        TokenServer.last_modified = "Mon, 23 Nov 2026 11:00:00 GMT"
        until_both(live, two, "ok")
        until_both(live, one, "unknown_key")
        TokenServer.mode = "500"
        time.sleep(2)  # several failed polls at 0.5 s
        until_both(live, two, "ok")
        logs = live.env.stack_logs()
        assert b"answered HTTP 500; keeping the last good keys" in logs
    finally:
        server.shutdown()
        live.write_config(f"file://{live.tokens}")
    until_both(live, two, "unknown_key")
    until_both(live, FILE_SECRET, "ok")


def test_restarted_workers_recover_keys_from_the_changelog(live: Live) -> None:
    secret = live.shown(live.keys_cli("add", "durable", "--server"))["server_secret"]
    until_both(live, secret, "ok")
    # Restart both workers with a key source that cannot be read: what they know
    # now comes from the table's changelog alone.
    live.write_config(f"http://127.0.0.1:{free_port()}/nothing-listens-here")
    stack = live.env.stack
    for proc in [p for p in stack.procs if p.name in live.workers]:
        proc.stop()
        stack.procs.remove(proc)
    for name in live.workers:
        stack.worker(live.env.config, name=name)
    try:
        until_both(live, secret, "ok", timeout_s=120)
        until_both(live, FILE_SECRET, "ok")
        assert b"unreachable (ClientConnectorError); keeping the last good keys" in \
            live.env.stack_logs()
    finally:
        live.write_config(f"file://{live.tokens}")


def test_no_plaintext_secret_in_any_topic_or_log(live: Live) -> None:
    blobs = asyncio.run(all_records(live.env.bootstrap, live.env.prefix))
    joined = b"\n".join(blobs)
    assert len(blobs) > 100
    logs = b"".join(p.read_bytes() for p in live.env.logs.glob("*.log"))
    assert logs
    assert len(live.used) >= 8
    for secret in live.used:
        assert secret.encode() not in joined, "plaintext secret in a topic"
        assert secret.encode() not in logs, "plaintext secret in a log"
    assert b"fernet:" in joined  # the admin-made access secret, sealed
