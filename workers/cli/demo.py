"""`eventguard run` (behind `make run`): the whole pipeline on the embedded Kafka,
a few sample events, and where each one went. Ctrl-C stops everything it started."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import yaml

from workers import settings, topics
from workers.cli.decisions import Collector
from workers.client import signed_headers
from workers.devstack import broker
from workers.devstack.processes import Stack
from workers.keys.jitsu import DEFAULT_KEY_ID
from workers.keys.sources import default_secret, kept_secret
from workers.keys.store import TopicReader
from workers.keys.table import changelog_topic
from workers.paths import cache_dir


@dataclass(frozen=True)
class Sample:
    name: str
    path: str
    body: bytes
    headers: dict[str, str]
    events: int = 1  # a batch yields one decision per event


def run(config_arg: str | None, port: int, wait: bool = True) -> int:
    conf = settings.load(config_arg)
    config = conf.path or _write_empty_config()
    started_broker = False
    if conf.bootstrap_servers:
        bootstrap = conf.bootstrap_servers
        print(f"Kafka: using {bootstrap}")
    else:
        started_broker = broker.status() is None
        print("Kafka: starting the embedded broker..." if started_broker else "Kafka: running")
        bootstrap = broker.start().bootstrap
        print(f"Kafka: {bootstrap}  (log {broker.log_file()})")
    stack = Stack(cache_dir() / "logs", bootstrap, conf.topic_prefix)
    # `timeout`, a supervisor or `kill` stop us with SIGTERM: stop the ingest, the worker
    # and the usage process as Ctrl-C does, instead of leaving them running on the ports.
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        asyncio.run(topics.apply(bootstrap, topics.load_specs(), conf.topic_prefix,
                                 conf.replication_factor, conf.min_insync_replicas))
        print(f"Topics: ready ({', '.join(s.name for s in topics.load_specs())})")
        worker = stack.worker(config, web_port=conf.worker_web_port)
        # Per-key usage, in a process of its own (it cannot stop the worker's decisions),
        # on usage.web_port, where `eventguard keys usage` and the admin API look.
        usage = stack.usage(config, web_port=conf.usage_web_port)
        admin_env, sign_in = _console_token(conf)
        admin = stack.ingest(config, port, env=admin_env,
                             admin_port=conf.admin_bind[1] if conf.admin_bind else None)
        url = f"http://127.0.0.1:{port}"
        print(f"Ingest: {url}   Worker: {worker.url}   Usage: {usage.url}")
        if conf.admin_bind:
            print(f"Console: {admin.url}/console/   {sign_in}")
        print(f"Logs: {worker.log}, {usage.log}")
        asyncio.run(_demo(conf, bootstrap, url, wait))
    except KeyboardInterrupt:
        print()
    finally:
        print("Stopping the ingest, the usage process and the worker...")
        stack.stop()
        if started_broker:
            print("Stopping Kafka...")
            broker.stop()
    return 0


def _console_token(conf: settings.Settings) -> tuple[dict[str, str], str]:
    """The ingest's environment for the console, and how to sign in. A config without an
    admin token gets one for the demo (kept in the cache, 0600), shown on a terminal only."""
    if conf.admin_token is not None:
        return {}, "(sign in with server.admin_token from the config)"
    token, path, _ = kept_secret("admin-token")
    hint = (f"(sign in with the demo's admin token {token} ; it is kept in {path})"
            if sys.stdout.isatty() else f"(sign in with the demo's admin token, in {path})")
    return {settings.ADMIN_TOKEN_ENV: token}, hint


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


async def _demo(conf: settings.Settings, bootstrap: str, url: str, wait: bool) -> None:
    view = TopicReader(changelog_topic(conf.app_id))
    task = asyncio.create_task(view.run(bootstrap))
    print("Worker: waiting for the keys to reach the key table...", flush=True)
    if not await view.wait_for(lambda st: len(st.keys) > 0, timeout=90):
        raise SystemExit("the worker published no keys in 90 s; see .cache/logs/worker.log")
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    samples = _samples(conf)
    async with Collector(bootstrap, prefix=conf.topic_prefix) as col, aiohttp.ClientSession(
    ) as http:
        print(f"\nSending {len(samples)} sample requests:\n")
        print(f"  {'sample':<34} {'HTTP':<5} {'went to':<16} reason")
        for s in samples:
            async with http.post(url + s.path, data=s.body, headers=s.headers) as r:
                answer = await r.json()
            if r.status != 200:
                print(f"  {s.name:<34} {r.status:<5} {'(not stored)':<16} {answer['error']}")
                continue
            rid = answer["request_id"]
            ids = [rid] if s.events == 1 else [f"{rid}:{i}" for i in range(s.events)]
            for n, eid in enumerate(ids):
                name = s.name if s.events == 1 else f"{s.name} [{n}]"
                try:
                    got = await col.decision(eid, timeout_s=60)
                except TimeoutError:
                    print(f"  {name:<34} {r.status:<5} {'?':<16} no decision in 60 s; "
                          "see .cache/logs/worker.log")
                    continue
                _print_decision(name, r.status, got)
        _print_next_steps(url, samples)
        if wait:
            print("\nWatching decisions (Ctrl-C stops everything):")
            seen = set(col.by_id)
            while True:
                await asyncio.sleep(0.5)
                for rid in [r for r in list(col.by_id) if r not in seen and col.decided(r)]:
                    seen.add(rid)
                    _print_decision(rid[:34], "", dict(col.by_id[rid]))


def _print_decision(name: str, status: int | str, got: dict[str, list[Any]]) -> None:
    topic = "accepted-events" if got.get("accepted-events") else "rejected-events"
    audit = got["audit-log"][0]
    detail = f" ({audit['detail']})" if audit["detail"] else ""
    if got.get("accepted-events"):
        detail = f" ({got['accepted-events'][0]['auth']['identity']})"
    key = f" key={audit['key_id']}" if audit["key_id"] else ""
    print(f"  {name:<34} {status!s:<5} {topic:<16} {audit['reason']}{detail}{key}", flush=True)


def _samples(conf: settings.Settings) -> list[Sample]:
    browser, server, origin = _demo_secrets(conf)
    page = orjson.dumps({"event_type": "page", "url": "https://shop.example/"})
    out = []
    if browser:
        out.append(Sample("browser event, good key", f"/api/v1/event?token={browser}", page,
                          {"Origin": origin} if origin else {}))
        out.append(Sample("browser event, wrong origin", f"/api/v1/event?token={browser}",
                          page, {"Origin": "https://evil.example"}))
    if server:
        out.append(Sample("server batch of 2", "/api/v1/s2s/event",
                          orjson.dumps([{"event_type": "track"}, {"event_type": "client.login"}]),
                          {"X-Auth-Token": server}, events=2))
        out.append(Sample("form.submit without a JWT", "/api/v1/s2s/event",
                          orjson.dumps({"event_type": "form.submit"}), {"X-Auth-Token": server}))
        out.append(Sample("JSON that is not an event", "/api/v1/s2s/event", b"42",
                          {"X-Auth-Token": server}))
    access = _demo_access(conf)
    if access:
        body = orjson.dumps({"event_type": "order.paid", "amount": 42})
        headers = signed_headers(*access, body, "/api/v1/s2s/event")
        out.append(Sample("signed request (HMAC)", "/api/v1/s2s/event", body, headers))
        out.append(Sample("the same signed request again", "/api/v1/s2s/event", body, headers))
    out.append(Sample("unknown key", "/api/v1/event?token=no-such-key", page, {}))
    out.append(Sample("malformed JSON body", "/api/v1/event?token=any", b'{"event_type": ', {}))
    return out


def _demo_secrets(conf: settings.Settings) -> tuple[str | None, str | None, str | None]:
    """Plain secrets for the samples, read from the config (never from Kafka)."""
    value = conf.api_keys
    if value is None:
        secret = default_secret()
        return secret, secret, None
    if isinstance(value, str) and not value.startswith(("{", "http", "file")):
        return value.strip(), None, None
    browser = server = origin = None
    for item in value if isinstance(value, list) else []:
        if isinstance(item, dict):
            if browser is None and isinstance(item.get("client_secret"), str):
                browser = item["client_secret"].strip()
                origins = [o for o in item.get("origins") or [] if isinstance(o, str)]
                origin = "https://" + origins[0].lstrip("*.") if origins else None
            if server is None and isinstance(item.get("server_secret"), str):
                server = item["server_secret"].strip()
    return browser, server, origin


def _demo_access(conf: settings.Settings) -> tuple[str, str] | None:
    """The first key's access key and secret, read from the config."""
    for item in conf.api_keys if isinstance(conf.api_keys, list) else []:
        if isinstance(item, dict) and item.get("access_key") and item.get("access_secret"):
            return str(item["access_key"]), str(item["access_secret"])
    return None


def _print_next_steps(url: str, samples: list[Sample]) -> None:
    first = next((s for s in samples if s.name == "browser event, good key"), None)
    print("\nTry it yourself:")
    if first:
        origin = first.headers.get("Origin", "")
        origin_flag = f" -H 'Origin: {origin}'" if origin else ""
        print(f"  curl -s '{url}{first.path}'{origin_flag} -d '{{\"event_type\":\"page\"}}'")
    print("  the console (URL above): keys, their usage and last rejections, JWT providers, "
          "policies")
    print("  .venv/bin/eventguard tail accepted-events     (or rejected-events, audit-log)")
    print("  .venv/bin/eventguard keys add mykey --client  (a new key, live on the worker in ms)")
    print("  .venv/bin/eventguard keys usage               (per key: last used, counts per "
          "reason; from the usage process)")
    print(f"  curl -s {url}/metrics | grep ^eventguard_     (the worker's: /metrics, /ready on "
          "its web port)")


def _write_empty_config() -> Path:
    """No config: the processes get one with the generated `defaultid` key (0600), the key
    a worker without any config makes; a config file without keys is refused."""
    secret = default_secret()
    path = cache_dir() / "empty-config.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    os.chmod(path, 0o600)
    path.write_text(yaml.safe_dump({"api_keys": [
        {"id": DEFAULT_KEY_ID, "client_secret": secret, "server_secret": secret}]}))
    return path
