"""docker-compose.yml, up for real (issue 21): `make compose-test`, not part of `make test`.

On a Docker engine of its own (workers/devstack/docker_engine.py), with the images the
compose file names (pulled where a registry answers; built from deploy/local-images/
here), the stack comes up as the README says; events sent to the ports published on
127.0.0.1 are decided as expected; a key added with `docker compose exec` is accepted
within a second; a worker container killed under steady traffic comes back and no
acknowledged request goes undecided; Prometheus scrapes every target, evaluates every
alert rule without error and answers every dashboard query with data. Each step prints
its time.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from workers.client import signed_headers
from workers.devstack import docker_engine, local_images
from workers.devstack.docker_engine import Engine

ROOT = Path(__file__).resolve().parents[2]
INGEST = "http://127.0.0.1:8001"
PROMETHEUS = "http://127.0.0.1:9090"
BROWSER_SECRET = "demo-shop-browser-secret"  # configs/eventguard.yaml's demo key
SHOP = "https://www.shop.example"
TIMES: list[tuple[str, float]] = []


def step(name: str, work: Callable[[], object]) -> Any:
    started = time.monotonic()
    result = work()
    took = time.monotonic() - started
    TIMES.append((name, took))
    shown = f" ({result})" if isinstance(result, str | int) and result is not True else ""
    print(f"[compose] {name}: {took:.1f}s{shown}", flush=True)
    return result


def readme_commands() -> list[str]:
    """The commands of the README's "Docker Compose" section, as printed."""
    text = (ROOT / "README.md").read_text()
    section = text.split("\n## Docker Compose\n", 1)[1].split("\n## ", 1)[0]
    block = section.split("```sh\n", 1)[1].split("```", 1)[0]
    return [line for line in block.splitlines() if line.strip()]


def readme(start: str) -> str:
    """The README's one command that starts with `start`: the test runs what users read."""
    [line] = [c for c in readme_commands() if c.startswith(start)]
    return line


def shell(engine: Engine, line: str, timeout_s: float = 600, check: bool = True
          ) -> subprocess.CompletedProcess[str]:
    """A command line run by bash in the project folder, as a user would."""
    done = subprocess.run(["bash", "-c", line], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout_s, stdin=subprocess.DEVNULL,
                          env={**os.environ, **engine.env, **STACK_ENV}, check=False)
    if check and done.returncode != 0:
        raise AssertionError(f"{line} failed:\n{done.stdout}\n{done.stderr}")
    return done


def compose(engine: Engine, *args: str, timeout_s: float = 600, check: bool = True
            ) -> subprocess.CompletedProcess[str]:
    """`docker compose ARGS`, for what the README leaves to the reader (ps, logs)."""
    return shell(engine, "docker compose " + " ".join(args), timeout_s, check)


# What the README's exports set before `docker compose up`.
STACK_ENV: dict[str, str] = {}


def readme_exports() -> dict[str, str]:
    exports = [c for c in readme_commands() if c.startswith("export ")]
    names = [c.split()[1].split("=")[0] for c in exports]
    script = "\n".join([*exports, *(f'echo "${name}"' for name in names)])  # lines: comments
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=True)
    return dict(zip(names, done.stdout.split(), strict=True))


@pytest.fixture(scope="module")
def stack() -> Iterator[Engine]:
    STACK_ENV.update(readme_exports())
    step("Debian packages (docker.io, mmdebstrap, prometheus)",
         lambda: ", ".join(docker_engine.install_packages()) or "already there")
    step(f"Docker Compose {docker_engine.COMPOSE_VERSION} (Go)",
         lambda: "built" if docker_engine.build_compose() else "cached")
    with docker_engine.engine() as engine:
        local_images.build_all(engine, step)
        try:
            step("docker compose up -d --wait", lambda: shell(
                engine, readme("docker compose up -d --wait"), timeout_s=900) and None)
            step("docker compose --profile monitoring up -d --wait prometheus", lambda: shell(
                engine, readme("docker compose --profile monitoring up")) and None)
            yield engine
        finally:
            logs = compose(engine, "logs", "--no-color", "--tail", "200", check=False)
            (docker_engine.home() / "stack.log").write_text(logs.stdout + logs.stderr)
            step("docker compose down -v", lambda: shell(
                engine, readme("docker compose --profile monitoring down -v")) and None)
    print("[compose] times: " + ", ".join(f"{n} {t:.0f}s" for n, t in TIMES))


def post(path: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(INGEST + path, data=body, method="POST",
                                     headers={"Content-Type": "application/json", **headers})
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as answer:
        return answer.code, json.loads(answer.read() or b"{}")


def audit(engine: Engine) -> dict[str, dict[str, Any]]:
    """Every audit record so far, by request id, read inside the stack with the CLI."""
    done = shell(engine, readme("docker compose exec usage eventguard tail audit-log"))
    out: dict[str, dict[str, Any]] = {}
    for line in done.stdout.splitlines():
        if line.startswith("{"):
            record = json.loads(line)
            value = record.get("value", record)
            out[str(value.get("request_id"))] = value
    return out


def decided(engine: Engine, request_ids: list[str], timeout_s: float = 60
            ) -> dict[str, dict[str, Any]]:
    deadline = time.monotonic() + timeout_s
    found: dict[str, dict[str, Any]] = {}
    while time.monotonic() < deadline:
        found = audit(engine)
        if all(r in found for r in request_ids):
            return {r: found[r] for r in request_ids}
        time.sleep(1)
    missing = [r for r in request_ids if r not in found]
    raise AssertionError(f"{len(missing)} of {len(request_ids)} requests not decided")


def test_events_through_the_published_port_are_decided(stack: Engine) -> None:
    body = b'{"event_type":"page"}'
    sent = {
        "ok": (200, json.loads(shell(stack, readme("curl -s 'http://127.0.0.1:8001")).stdout)),
        "origin_not_allowed": post("/api/v1/event", body, {"X-Auth-Token": BROWSER_SECRET,
                                                           "Origin": "https://evil.example"}),
        "unknown_key": post("/api/v1/event", body, {"X-Auth-Token": "no-such-secret"}),
    }
    signed = signed_headers("demo-shop-access-key", "demo-shop-access-secret", body,
                            "/api/v1/s2s/event")
    sent["ok (signed)"] = post("/api/v1/s2s/event", body, signed)
    assert all(status == 200 for status, _ in sent.values()), sent
    ids = [answer["request_id"] for _, answer in sent.values()]
    got = step("four decisions read back", lambda: decided(stack, ids))
    assert [got[i]["reason"] for i in ids] == ["ok", "origin_not_allowed", "unknown_key", "ok"]
    assert got[ids[3]]["method"] == "hmac"
    # The console is on with the README's EVENTGUARD_ADMIN_TOKEN, on the admin port only.
    with urllib.request.urlopen("http://127.0.0.1:8002/console/sign-in", timeout=10) as page:
        assert page.status == 200 and b"Admin token" in page.read()
    assert post("/api/v1/admin/keys", b"{}", {})[0] == 404


def test_a_key_added_with_compose_exec_is_accepted_within_a_second(stack: Engine) -> None:
    added = shell(stack, readme("docker compose exec worker-1 eventguard keys add"))
    secret = next(line.split()[-1] for line in added.stdout.splitlines()
                  if "client_secret" in line)
    started = time.monotonic()
    request_ids = []
    while time.monotonic() - started < 10:
        status, answer = post("/api/v1/event", b'{"event_type":"page"}',
                              {"X-Auth-Token": secret})
        assert status == 200
        request_ids.append(answer["request_id"])
        time.sleep(0.05)
        if len(request_ids) % 10 == 0 and any(
                d["reason"] == "ok" for d in decided(stack, request_ids).values()):
            break
    got = decided(stack, request_ids)
    first_ok = next(i for i, r in enumerate(request_ids) if got[r]["reason"] == "ok")
    print(f"[compose] new key: first accepted event was request {first_ok + 1}, "
          f"sent {first_ok * 0.05:.2f}s after `keys add` returned")
    assert got[request_ids[-1]]["reason"] == "ok"


def test_a_killed_worker_comes_back_and_nothing_acknowledged_is_lost(stack: Engine) -> None:
    acked: list[str] = []
    stop = threading.Event()

    def traffic() -> None:
        while not stop.is_set():
            try:
                status, answer = post("/api/v1/event", b'{"event_type":"page"}',
                                      {"X-Auth-Token": BROWSER_SECRET, "Origin": SHOP})
            except (urllib.error.URLError, OSError):
                continue
            if status == 200:
                acked.append(answer["request_id"])
            time.sleep(0.01)

    sender = threading.Thread(target=traffic, daemon=True)
    sender.start()
    time.sleep(3)
    container = compose(stack, "ps", "-q", "worker-1").stdout.strip()
    started, pid = stack.docker("inspect", "-f", "{{.State.StartedAt}} {{.State.Pid}}",
                                container).stdout.split()
    # SIGKILL to the container's process, as the kernel's OOM killer or a crash ends it.
    # Not `docker kill`: Docker counts that as a manual stop, and `restart: unless-stopped`
    # then leaves the container down, as it should.
    os.kill(int(pid), signal.SIGKILL)
    killed_at = time.monotonic()

    def back() -> float:
        while True:
            state = stack.docker("inspect", "-f", "{{.State.StartedAt}} {{.State.Running}}",
                                 container).stdout.split()
            if state[0] != started and state[1] == "true":
                try:
                    with urllib.request.urlopen("http://127.0.0.1:6066/ready", timeout=3) as r:
                        if r.status == 200:
                            return time.monotonic() - killed_at
                except (urllib.error.URLError, OSError):
                    pass
            if time.monotonic() - killed_at > 300:
                raise AssertionError("worker-1 was not restarted and ready within 300 s")
            time.sleep(1)

    took = step("worker-1 killed: restarted and /ready 200", back)
    time.sleep(3)
    stop.set()
    sender.join(15)
    got = step(f"{len(acked)} acknowledged requests decided", lambda: decided(
        stack, acked, timeout_s=180) and len(acked))
    assert got == len(acked) and len(acked) > 100
    print(f"[compose] kill: {len(acked)} acknowledged, 0 lost, back in {took:.1f}s")


def prometheus(path: str) -> Any:
    with urllib.request.urlopen(PROMETHEUS + path, timeout=10) as answer:
        body = json.loads(answer.read())
    assert body["status"] == "success", body
    return body["data"]


def test_prometheus_scrapes_everything_and_every_rule_and_panel_works(stack: Engine) -> None:
    def targets_up() -> int:
        deadline = time.monotonic() + 120
        while True:
            active = prometheus("/api/v1/targets")["activeTargets"]
            down = [(t["labels"]["job"], t["labels"]["instance"], t["lastError"])
                    for t in active if t["health"] != "up"]
            if active and not down:
                return len(active)
            if time.monotonic() > deadline:
                raise AssertionError(f"targets not up: {down}")
            time.sleep(3)

    count = step("every Prometheus target up", targets_up)
    assert count == 4  # the ingest, two workers, the usage process
    groups = prometheus("/api/v1/rules")["groups"]
    rules = [r for g in groups for r in g["rules"]]
    assert rules and all(r["health"] == "ok" for r in rules), [
        (r["name"], r.get("lastError")) for r in rules if r["health"] != "ok"]
    # Two scrapes at least, for the rate() of the dashboard's panels.
    time.sleep(35)
    dashboard = json.loads((ROOT / "deploy/grafana/eventguard-dashboard.json").read_text())
    queries = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    empty = [q for q in queries
             if not prometheus("/api/v1/query?" + urllib.parse.urlencode({"query": q}))["result"]]
    assert queries and not empty, empty
    check = compose(stack, "exec", "-T", "prometheus", "promtool", "check", "config",
                    "/etc/prometheus/prometheus.yml")
    assert "SUCCESS" in check.stdout + check.stderr
    print(f"[compose] prometheus: {count} targets up, {len(rules)} rules ok, "
          f"{len(queries)} dashboard queries with data")


def test_every_alert_has_cases_that_fire_and_cases_that_do_not(stack: Engine) -> None:
    """promtool's unit tests of deploy/prometheus/alerts.yml (alerts_test.yml): each alert
    has at least one case that fires and one that does not."""
    folder = ROOT / "deploy" / "prometheus"
    done = subprocess.run(["promtool", "test", "rules", "alerts_test.yml"], cwd=folder,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0 and "SUCCESS" in done.stdout, done.stdout + done.stderr
    import yaml
    alerts = {r["alert"] for g in yaml.safe_load((folder / "alerts.yml").read_text())["groups"]
              for r in g["rules"] if "alert" in r}
    cases = [c for t in yaml.safe_load((folder / "alerts_test.yml").read_text())["tests"]
             for c in t["alert_rule_test"]]
    fires = {c["alertname"] for c in cases if c["exp_alerts"]}
    quiet = {c["alertname"] for c in cases if not c["exp_alerts"]}
    assert alerts == fires == quiet, (alerts - fires, alerts - quiet)
    print(f"[compose] promtool: {len(alerts)} alerts, {len(cases)} cases, all pass")
