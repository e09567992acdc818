"""The commands a user types, run as processes against the real broker."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import aiohttp
import orjson
import pytest
import yaml
from aiokafka.admin import AIOKafkaAdminClient

from tests.integration.conftest import Env, write_config
from workers import topics
from workers.cli.decisions import Collector
from workers.devstack.processes import Stack, free_port


def cli(env: Env, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "workers.cli", *args], capture_output=True,
                          text=True, timeout=timeout, env=_env(env))


def _env(env: Env, **extra: str) -> dict[str, str]:
    return {**os.environ, "EVENTGUARD_TOPIC_PREFIX": env.prefix, **extra}


@pytest.mark.skipif(bool(os.environ.get("KAFKA_BOOTSTRAP_SERVERS")), reason="external cluster")
def test_kafka_status_prints_the_bootstrap_address(env: Env) -> None:
    done = cli(env, "kafka", "status")
    assert done.returncode == 0 and done.stdout.strip() == env.bootstrap


def test_topics_apply_is_idempotent(env: Env) -> None:
    done = cli(env, "topics", "apply", "--config", str(env.config))
    assert done.returncode == 0, done.stderr
    assert sorted(done.stdout.split()) == sorted(
        f"{env.prefix}{t}:" if i % 2 == 0 else "ok"
        for t in ("accepted-events", "audit-log", "auth-config", "eventguard-keys-changelog",
                  "eventguard-usage-counts-changelog", "eventguard-usage-deltas",
                  "eventguard-usage-last-changelog", "nonces", "raw-events", "rejected-events")
        for i in range(2))



def test_delete_prefixed_deletes_only_that_prefix(env: Env) -> None:
    """What tests and benchmarks clean up with: one prefix's topics, no one else's."""
    mine, theirs = f"{env.prefix}del-a.", f"{env.prefix}del-ab."
    specs = [s for s in topics.load_specs() if s.name in ("raw-events", "audit-log")]

    async def go() -> tuple[int, set[str]]:
        await topics.apply(env.bootstrap, specs, mine)
        await topics.apply(env.bootstrap, specs, theirs)
        deleted = await topics.delete_prefixed(env.bootstrap, mine)
        admin = AIOKafkaAdminClient(bootstrap_servers=env.bootstrap)
        await admin.start()
        try:
            for _ in range(40):  # deletion is asynchronous on the broker
                left = {t for t in await admin.list_topics() if t.startswith(env.prefix + "del-")}
                if not any(t.startswith(mine) for t in left):
                    break
                await asyncio.sleep(0.25)
            return deleted, left
        finally:
            await admin.close()

    deleted, left = asyncio.run(go())
    assert deleted == 2
    assert left == {theirs + "raw-events", theirs + "audit-log"}

def test_tail_prints_json_lines(env: Env) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "workers.cli", "tail", "audit-log", "--max", "1",
         "--config", str(env.config)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env=_env(env))
    try:
        time.sleep(3)  # tail starts at the end of the topic
        _, body = env.post(f"/api/v1/s2s/event?token={env.secrets['backend']}",
                                b'{"event_type":"tailed"}')
        out, _ = proc.communicate(timeout=30)
    finally:
        proc.kill()
    line = orjson.loads(out.splitlines()[0])
    assert line["topic"] == env.prefix + "audit-log"
    assert line["value"]["event_type"] == "tailed" and line["key"] == body["request_id"]


def test_tail_of_a_missing_topic_says_so_in_one_line(env: Env) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "workers.cli", "tail", "no-such-topic", "--config",
         str(env.config)], capture_output=True, text=True, timeout=120, env=_env(env))
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        f"eventguard: no topic {env.prefix}no-such-topic on {env.bootstrap}; `eventguard "
        "topics apply` creates eventguard's topics (with the prefix of "
        "EVENTGUARD_TOPIC_PREFIX)"]


def test_ingest_answers_503_while_kafka_is_unreachable(env: Env, tmp_path: Path) -> None:
    stack = Stack(tmp_path, f"127.0.0.1:{free_port()}")  # nothing listens there
    port = free_port()
    proc = stack._spawn("ingest-down", ["ingest", "--config", str(env.config), "--port", str(port)])
    try:
        async def go() -> tuple[int, str, str, int]:
            for _ in range(100):
                try:
                    async with aiohttp.ClientSession() as s, s.post(
                        f"http://127.0.0.1:{port}/api/v1/event?token=x", data=b"{}"
                    ) as r:
                        body = await r.json()
                        async with s.get(f"http://127.0.0.1:{port}/health") as h:
                            return r.status, r.headers.get("Retry-After", ""), body["error"], \
                                h.status
                except aiohttp.ClientConnectionError:
                    await asyncio.sleep(0.2)
            raise AssertionError(f"ingest never answered:\n{proc.tail()}")
        status, retry, error, health = asyncio.run(go())
    finally:
        stack.stop()
    assert (status, retry, health) == (503, "5", 503)
    assert error == "Kafka is unavailable; the event was not stored, retry later"


def test_plain_faust_worker_command_works(env: Env, tmp_path: Path) -> None:
    """`faust -A workers.app worker` as any Faust user runs it, on its own topics."""
    prefix = env.prefix.rstrip(".") + "-faust."
    config = write_config(tmp_path / "c.yaml", [{"id": "f", "server_secret": "faust-cli-secret"}])
    from workers import topics

    asyncio.run(topics.apply(env.bootstrap, topics.load_specs(), prefix))
    faust = Path(sys.executable).parent / "faust"
    stack = Stack(tmp_path, env.bootstrap, prefix)
    log = tmp_path / "faust.log"
    with open(log, "wb") as out:
        worker = subprocess.Popen(
            [str(faust), "-A", "workers.app", "worker", "-l", "info", "--without-web"],
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            env={**os.environ, "EVENTGUARD_TOPIC_PREFIX": prefix,
                 "EVENTGUARD_CONFIG": str(config), "KAFKA_BOOTSTRAP_SERVERS": env.bootstrap})
    port = free_port()
    try:
        stack.ingest(config, port)

        async def go() -> str:
            async with Collector(env.bootstrap, prefix=prefix) as col:
                for _ in range(60):
                    async with aiohttp.ClientSession() as s, s.post(
                        f"http://127.0.0.1:{port}/api/v1/s2s/event?token=faust-cli-secret",
                        data=b'{"event_type":"x"}') as r:
                        rid = (await r.json())["request_id"]
                    try:
                        got = await col.decision(rid, timeout_s=2)
                    except TimeoutError:
                        continue
                    if got.get("accepted-events"):
                        return str(got["accepted-events"][0]["auth"]["key_id"])
            raise AssertionError(log.read_text()[-3000:])
        assert asyncio.run(go()) == "f"
    finally:
        worker.terminate()
        worker.wait(30)
        stack.stop()


@pytest.mark.parametrize(("doc", "line"), [
    ({"api-keys": [{"id": "a", "server_secret": "s"}]},
     "unknown section 'api-keys' (did you mean 'api_keys'?)"),
    ({"sever": {"admin_token": "x"}, "api_keys": []},
     "unknown section 'sever' (did you mean 'server'?)"),
    ({"server": {"admin_token": "admin"}}, "server.admin_token is too weak (5 characters, "),
    ({"kafka": {"topic_prefix": "x."}}, "has no api_keys: add the keys there, or write "
                                        "`api_keys: []`"),
    ({"api_keys": [{"id": "web", "client_secret": "c-secret-1", "origin": ["*.a.test"]}]},
     ": api key web: unknown field 'origin' (did you mean 'origins'?)"),
    ({"api_keys": [{"id": "web", "client_secret": "c-secret-1", "origins": ["a.*.test"]}]},
     "origin pattern 'a.*.test' can never match an Origin"),
    ({"worker": {"web_port": 70000}, "api_keys": []},
     "worker.web_port must be a port, 1-65535, got 70000"),
    ({"kafka": {"bootstrap_servers": 9092}, "api_keys": []},
     "kafka.bootstrap_servers must be `host:port,host:port` or a list"),
    ({"kafka": {"sasl_password": "pw"}, "api_keys": []},
     "a password does not belong in the config file"),
    # Handled well before issue 19; kept so.
    ({"ingest": {"max_body_bytes": "big"}, "api_keys": []},
     "ingest.max_body_bytes must be a number, got 'big'"),
    ({"kafka": ["not", "a", "mapping"]}, "`kafka` must be a mapping"),
])
def test_a_worker_with_a_config_mistake_stops_in_one_line(env: Env, tmp_path: Path,
                                                          doc: dict[str, object],
                                                          line: str) -> None:
    config = tmp_path / "mistake.yaml"
    config.write_text(yaml.safe_dump(doc))
    done = subprocess.run([sys.executable, "-m", "workers.cli", "worker", "--config",
                           str(config)], capture_output=True, text=True, timeout=120,
                          env=_env(env))
    lines = [x for x in done.stderr.splitlines() if x.strip()]
    assert done.returncode == 2 and len(lines) == 1, done.stderr
    assert lines[0].startswith("eventguard: ") and line in lines[0], lines


@pytest.mark.parametrize(("args", "line"), [
    (["ingest", "--port", "{busy}"], "address already in use: another process listens on that "
                                     "port; stop it, or choose another port"),
    (["worker", "--web-port", "{busy}"], "the web port 127.0.0.1:{busy} is in use"),
    (["send", "--url", "http://127.0.0.1:{closed}", "--token", "x"],
     "cannot reach 127.0.0.1:{closed} ("),
    (["topics", "apply"], "could not connect to Kafka as PLAINTEXT; if the brokers want TLS"),
    (["keys", "list"], "could not connect to Kafka as PLAINTEXT; if the brokers want TLS"),
    (["tail", "raw-events"], "could not connect to Kafka as PLAINTEXT; if the brokers want TLS"),
])
def test_an_environment_mistake_is_one_line_and_exit_1(env: Env, args: list[str],
                                                       line: str) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        ports = {"busy": busy.getsockname()[1], "closed": free_port()}
        # Kafka "unreachable": a port nothing listens on (the commands that need Kafka).
        done = subprocess.run(
            [sys.executable, "-m", "workers.cli", *(a.format(**ports) for a in args),
             "--config", str(env.config)],
            capture_output=True, text=True, timeout=120,
            env=_env(env, KAFKA_BOOTSTRAP_SERVERS=f"127.0.0.1:{ports['closed']}")
            if args[0] in ("topics", "keys", "tail") else _env(env))
    lines = [x for x in done.stderr.splitlines() if x.strip() and " INFO " not in x]
    assert done.returncode == 1 and len(lines) == 1, done.stderr
    assert lines[0].startswith("eventguard: ") and line.format(**ports) in lines[0], lines
    assert "Traceback" not in done.stderr



@pytest.mark.parametrize(("args", "extra_env", "code", "line"), [
    (["worker", "--config", "/nonexistent/eventguard.yaml"], {}, 2,
     "eventguard: cannot read config /nonexistent/eventguard.yaml: No such file or directory"),
    (["ingest", "--processes", "0"], {}, 2, "eventguard: --processes is 0; give 1 or more"),
    (["keys", "add", "x"], {}, 1,
     "eventguard keys: say which secrets the key gets: client, server and/or access"),
    (["keys", "add", "sealed", "--access"], {"EVENTGUARD_MASTER_KEY": "not-a-fernet-key"}, 2,
     "eventguard: EVENTGUARD_MASTER_KEY is not a Fernet key; make one with"),
])
def test_a_usage_mistake_is_one_line(env: Env, args: list[str], extra_env: dict[str, str],
                                     code: int, line: str) -> None:
    """Handled well before issue 19 (the master key now too); kept so."""
    done = subprocess.run([sys.executable, "-m", "workers.cli", *args], capture_output=True,
                          text=True, timeout=120, env=_env(env, **extra_env))
    lines = [x for x in done.stderr.splitlines() if x.strip()]
    assert done.returncode == code and len(lines) == 1, done.stderr
    assert lines[0].startswith(line), lines



@pytest.mark.parametrize("args", [["keys", "list"], ["keys", "add", "k", "--client"]])
def test_keys_before_topics_apply_say_so_at_once(env: Env, args: list[str]) -> None:
    prefix = env.prefix.rstrip(".") + "-notopics."
    done = subprocess.run([sys.executable, "-m", "workers.cli", *args], capture_output=True,
                          text=True, timeout=60, env=_env(env, EVENTGUARD_TOPIC_PREFIX=prefix))
    assert done.returncode == 1 and done.stderr.splitlines() == [
        f"eventguard: no topic {prefix}auth-config; `eventguard topics apply` creates it "
        "(with the prefix of EVENTGUARD_TOPIC_PREFIX)"], done.stderr


def test_a_bare_faust_worker_with_a_config_mistake_says_it_in_one_line(env: Env,
                                                                     tmp_path: Path) -> None:
    config = tmp_path / "mistake.yaml"
    config.write_text(yaml.safe_dump({"sever": {}, "api_keys": []}))
    faust = Path(sys.executable).with_name("faust")
    done = subprocess.run([str(faust), "-A", "workers.app", "worker"], capture_output=True,
                          text=True, timeout=120,
                          env=_env(env, EVENTGUARD_CONFIG=str(config),
                                   KAFKA_BOOTSTRAP_SERVERS=env.bootstrap))
    lines = [x for x in done.stderr.splitlines() if x.strip()]
    assert done.returncode == 2 and lines == [
        "eventguard: unknown section 'sever' (did you mean 'server'?)"], done.stderr


def test_a_worker_pointed_at_a_port_that_is_not_kafka_says_so(env: Env, tmp_path: Path) -> None:
    with socket.socket() as not_kafka:  # accepts TCP, never answers a Kafka request
        not_kafka.bind(("127.0.0.1", 0))
        not_kafka.listen()
        stack = Stack(tmp_path, f"127.0.0.1:{not_kafka.getsockname()[1]}", env.prefix)
        try:
            worker = stack.worker(env.config)
            deadline = time.monotonic() + 60
            reason = ""
            while "is that Kafka's port?" not in reason:
                assert time.monotonic() < deadline and worker.alive(), worker.tail()
                time.sleep(0.5)
                reason = _ready_reason(worker.url)
                assert reason != "ready", "/ready said 200 with no Kafka"
            assert worker.log.read_text().count("waiting: no answer from Kafka") == 1
        finally:
            stack.stop()


def _ready_reason(url: str) -> str:
    try:
        urllib.request.urlopen(url + "/ready", timeout=2)
    except urllib.error.HTTPError as answer:
        return str(orjson.loads(answer.read())["reason"])
    except OSError:
        return ""
    return "ready"
