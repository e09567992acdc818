"""docker-compose.yml, checked without Docker: every eventguard command parses with the
CLI's own parser, every environment variable it sets is one eventguard reads, the
healthchecks ask the real health endpoints on the service's own port, and Prometheus
scrapes every ingest and worker there.

Each check returns the problems it found, so that the tests below can also break a copy
of the file and see each check catch it.
"""

from __future__ import annotations

import copy
import re
import shlex
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from workers import settings
from workers.cli.main import build_parser

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
PROMETHEUS = ROOT / "deploy" / "prometheus" / "prometheus.yml"
HEALTH_PATHS = ("/health", "/ready")
FAUST_WEB_PORT = 6066  # Faust's default web port, where a worker serves /health and /metrics
LONG_RUNNING = ("ingest", "worker", "usage")
FAUST_COMMANDS = ("worker", "usage")  # they hand extra arguments on to `faust worker`
# A service without a healthcheck is never "healthy": `depends_on: service_healthy` on
# it would wait forever, and a dead ingest would look alive.
NEEDS_HEALTHCHECK = ("ingest",)
SCRAPE_JOBS = {"ingest": "eventguard-ingest", "worker": "eventguard-worker",
               "usage": "eventguard-usage"}
MONITORING = ("prometheus", "grafana")

Doc = dict[str, Any]


def load(path: Path = COMPOSE) -> Doc:
    doc = yaml.safe_load(path.read_text())  # `<<: *eventguard` merges are resolved here
    assert isinstance(doc, dict)
    return doc


def eventguard_services(doc: Doc) -> dict[str, Doc]:
    """The services that run the eventguard image (its entrypoint is `eventguard`)."""
    return {name: svc for name, svc in doc["services"].items()
            if str(svc.get("image", "")).startswith("eventguard") or "build" in svc}


def command(svc: Doc) -> list[str]:
    cmd = svc.get("command", [])
    return shlex.split(cmd) if isinstance(cmd, str) else [str(a) for a in cmd]


def parsed(svc: Doc) -> tuple[Any, list[str]]:
    """The command as `eventguard` reads it: (its arguments, what goes on to Faust)."""
    return build_parser().parse_known_args(command(svc))


def command_problems(doc: Doc) -> list[str]:
    problems = []
    for name, svc in eventguard_services(doc).items():
        try:
            args, rest = parsed(svc)
        except SystemExit:
            problems.append(f"{name}: `eventguard {' '.join(command(svc))}` does not parse")
            continue
        if rest and args.command not in FAUST_COMMANDS:  # only they hand extra args on
            problems.append(f"{name}: `eventguard {args.command}` does not take {rest}")
    return problems


def environment(svc: Doc) -> dict[str, str]:
    env = svc.get("environment") or {}
    if isinstance(env, list):
        return dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {str(k): str(v) for k, v in env.items()}


def env_problems(doc: Doc) -> list[str]:
    return [f"{name}: sets {var}, which eventguard does not read"
            for name, svc in eventguard_services(doc).items()
            for var in environment(svc) if var not in settings.ENV_VARS]


def port(svc: Doc) -> int | None:
    """The port the service serves HTTP on, as its command configures it (None: none)."""
    args, rest = parsed(svc)
    if args.command == "ingest":
        return int(args.port)
    if hasattr(args, "web_port"):  # `eventguard worker|usage --web-port N`; else None here
        return int(args.web_port) if args.web_port is not None else None
    for n, arg in enumerate(rest):  # else Faust's own `--web-port N`, `--web-port=N`, `-p N`
        if arg in ("--web-port", "-p") and n + 1 < len(rest):
            return int(rest[n + 1])
        if arg.startswith("--web-port="):
            return int(arg.split("=", 1)[1])
    return FAUST_WEB_PORT


def healthcheck_urls(svc: Doc) -> list[str]:
    test = (svc.get("healthcheck") or {}).get("test") or []
    text = test if isinstance(test, str) else " ".join(str(t) for t in test)
    return re.findall(r"https?://[^\s'\"]+", text)


def healthcheck_problems(doc: Doc) -> list[str]:
    problems = []
    for name, svc in eventguard_services(doc).items():
        kind = parsed(svc)[0].command
        if kind not in LONG_RUNNING:
            continue
        urls = healthcheck_urls(svc)
        if not urls:
            if kind in NEEDS_HEALTHCHECK or "healthcheck" in svc:
                problems.append(f"{name}: no healthcheck asks an HTTP health endpoint")
            continue
        for url in urls:
            parts = urlsplit(url)
            if parts.hostname not in ("127.0.0.1", "localhost"):
                problems.append(f"{name}: healthcheck {url} is not on the container itself")
            if port(svc) is None:
                problems.append(f"{name}: healthcheck {url}, but `eventguard {kind}` serves "
                                "no HTTP (no --web-port)")
            elif parts.port != port(svc):
                problems.append(f"{name}: healthcheck {url} is not on port {port(svc)}, "
                                f"where `eventguard {kind}` serves")
            if parts.path not in HEALTH_PATHS:
                problems.append(f"{name}: healthcheck {url} is not one of {HEALTH_PATHS}")
    return problems


def scrape_targets(prometheus: Doc) -> dict[str, set[str]]:
    return {job["job_name"]: {t for sc in job.get("static_configs", [])
                              for t in sc.get("targets", [])}
            for job in prometheus["scrape_configs"]}


def scrape_problems(doc: Doc, prometheus: Doc) -> list[str]:
    jobs = scrape_targets(prometheus)
    problems = []
    expected: dict[str, set[str]] = {job: set() for job in SCRAPE_JOBS.values()}
    for name, svc in eventguard_services(doc).items():
        kind = parsed(svc)[0].command
        if kind in SCRAPE_JOBS:
            expected[SCRAPE_JOBS[kind]].add(f"{name}:{port(svc) or 'no web port'}")
    for job, targets in expected.items():
        got = jobs.get(job, set())
        problems += [f"prometheus job {job} does not scrape {t}" for t in sorted(targets - got)]
        problems += [f"prometheus job {job} scrapes {t}, which is no {job} in the compose "
                     "file" for t in sorted(got - targets)]
    for job in jobs:
        if job in SCRAPE_JOBS.values():
            path = next(j for j in prometheus["scrape_configs"] if j["job_name"] == job)
            if path.get("metrics_path", "/metrics") != "/metrics":
                problems.append(f"prometheus job {job} scrapes {path['metrics_path']}")
    return problems


def profile_problems(doc: Doc) -> list[str]:
    """Prometheus and Grafana only under the `monitoring` profile; everything else in
    the plain `docker compose up`; every file they mount is in the repository."""
    problems = []
    for name, svc in doc["services"].items():
        profiles = svc.get("profiles") or []
        if name in MONITORING and profiles != ["monitoring"]:
            problems.append(f"{name}: not in the monitoring profile only")
        if name not in MONITORING and profiles:
            problems.append(f"{name}: has profiles {profiles}; `docker compose up` skips it")
        for volume in svc.get("volumes") or []:
            source = str(volume).split(":", 1)[0]
            if source.startswith(".") and not (ROOT / source).exists():
                problems.append(f"{name}: mounts {source}, which does not exist")
    for name in MONITORING:
        if name not in doc["services"]:
            problems.append(f"no {name} service")
    return problems


CHECKS: dict[str, Callable[[Doc], list[str]]] = {
    "commands": command_problems,
    "environment": env_problems,
    "healthchecks": healthcheck_problems,
    "scraping": lambda doc: scrape_problems(doc, load(PROMETHEUS)),
    "profiles": profile_problems,
}


@pytest.mark.parametrize("check", list(CHECKS))
def test_the_compose_file_passes(check: str) -> None:
    assert CHECKS[check](load()) == []


def test_the_compose_file_has_the_stack() -> None:
    services = eventguard_services(load())
    kinds = sorted(parsed(svc)[0].command for svc in services.values())
    assert kinds == ["ingest", "topics", "usage", "worker", "worker"]


def test_the_admin_api_asks_the_usage_process() -> None:
    doc = load()
    url = urlsplit(environment(svc(doc, "ingest"))[settings.USAGE_URL_ENV])
    usage = svc(doc, str(url.hostname))
    assert parsed(usage)[0].command == "usage" and url.port == port(usage)


def test_the_admin_listener_is_published_on_loopback_only() -> None:
    """Issue 20: the admin API and the console are reachable from the host, nowhere else."""
    ingest = svc(load(), "ingest")
    args = parsed(ingest)[0]
    assert (args.admin_host, args.admin_port) == ("0.0.0.0", 8002)  # inside the network
    published = [str(p) for p in ingest["ports"]]
    assert "127.0.0.1:8002:8002" in published
    assert not [p for p in published if p.endswith(":8002") and not p.startswith("127.0.0.1:")]


# Each check, shown a broken copy of the real file, finds the break.

def broken(edit: Callable[[Doc], None]) -> Doc:
    doc = copy.deepcopy(load())
    edit(doc)
    return doc


def svc(doc: Doc, name: str) -> Doc:
    service: Doc = doc["services"][name]
    return service


def set_command(name: str, cmd: list[str]) -> Callable[[Doc], None]:
    return lambda doc: svc(doc, name).__setitem__("command", cmd)


def set_health(name: str, url: str) -> Callable[[Doc], None]:
    test = ["CMD", "python", "-c", f"import urllib.request; urllib.request.urlopen('{url}')"]
    return lambda doc: svc(doc, name).__setitem__("healthcheck", {"test": test})


def both(*edits: Callable[[Doc], None]) -> Callable[[Doc], None]:
    def edit(doc: Doc) -> None:
        for one in edits:
            one(doc)
    return edit


def set_env(name: str, var: str) -> Callable[[Doc], None]:
    return lambda doc: svc(doc, name).setdefault("environment", {}).__setitem__(var, "x")


INGEST = ["ingest", "--config", "/etc/eventguard/eventguard.yaml", "--port", "8001"]
BREAKS: list[tuple[str, str, Callable[[Doc], None]]] = [
    ("commands", "unknown option", set_command("ingest", [*INGEST, "--prot", "8002"])),
    ("commands", "unknown command", set_command("worker-1", ["wroker", "--config", "x"])),
    ("commands", "missing value", set_command("topics", ["topics", "apply", "--config"])),
    ("environment", "a misspelt variable", set_env("worker-1", "EVENTGUARD_LOGFORMAT")),
    ("environment", "the worker URL usage no longer reads",
     set_env("ingest", "EVENTGUARD_WORKER_URL")),
    ("environment", "a variable nobody reads", set_env("ingest", "EVENTGUARD_PORT")),
    ("healthchecks", "a path that is no health endpoint",
     set_health("ingest", "http://127.0.0.1:8001/healthz")),
    ("healthchecks", "another port", set_health("ingest", "http://127.0.0.1:8002/health")),
    ("healthchecks", "the port moved but the check did not",
     set_command("ingest", [*INGEST[:-1], "8080"])),
    ("healthchecks", "another host", set_health("ingest", "http://example.com:8001/health")),
    ("healthchecks", "no healthcheck on the ingest",
     lambda doc: svc(doc, "ingest").pop("healthcheck")),
    ("healthchecks", "a worker checked on the ingest's port",
     set_health("worker-1", "http://127.0.0.1:8001/ready")),
    ("healthchecks", "a worker checked on Faust's default port while it serves another",
     both(set_command("worker-2", ["worker", "--web-port", "6067"]),
          set_health("worker-2", "http://127.0.0.1:6066/ready"))),
    ("scraping", "a worker the scrape config does not know",
     lambda doc: doc["services"].__setitem__("worker-3", copy.deepcopy(svc(doc, "worker-1")))),
    ("scraping", "a usage process the scrape config does not know",
     lambda doc: doc["services"].__setitem__("usage-2", copy.deepcopy(svc(doc, "usage")))),
    ("healthchecks", "the usage process checked on a worker's port",
     set_health("usage", "http://127.0.0.1:6066/ready")),
    ("scraping", "the ingest moved to another port",
     set_command("ingest", [*INGEST[:-1], "8080"])),
    ("profiles", "Prometheus in the plain `docker compose up`",
     lambda doc: svc(doc, "prometheus").pop("profiles")),
    ("profiles", "the ingest only in the monitoring profile",
     lambda doc: svc(doc, "ingest").__setitem__("profiles", ["monitoring"])),
    ("profiles", "a mount that is not in the repository",
     lambda doc: svc(doc, "grafana")["volumes"].append("./deploy/missing.json:/x:ro")),
]


@pytest.mark.parametrize(("check", "what", "edit"), BREAKS, ids=[b[1] for b in BREAKS])
def test_each_check_catches_a_break(check: str, what: str, edit: Callable[[Doc], None]) -> None:
    assert CHECKS[check](broken(edit)), f"{check} missed: {what}"


def test_a_worker_healthcheck_on_its_web_port_passes() -> None:
    """What the worker's healthcheck will look like: /ready on Faust's web port."""
    doc = broken(set_health("worker-1", f"http://127.0.0.1:{FAUST_WEB_PORT}/ready"))
    assert healthcheck_problems(doc) == []
    doc = broken(both(set_command("worker-2", ["worker", "--web-port=6070"]),
                      set_health("worker-2", "http://127.0.0.1:6070/health")))
    assert healthcheck_problems(doc) == []


# The list of environment variables is the one the code reads, and the one documented.

def test_env_vars_are_the_ones_the_code_reads_and_the_docs_name() -> None:
    named = set()
    for path in (ROOT / "workers").rglob("*.py"):
        named |= set(re.findall(r"\"((?:EVENTGUARD|KAFKA)_[A-Z_]+)\"", path.read_text()))
    assert named == set(settings.ENV_VARS)
    documented = set(re.findall(r"^\| `([A-Z_]+)` \|", (ROOT / "docs" / "configuration.md")
                                .read_text(), re.MULTILINE))
    assert set(settings.ENV_VARS) <= documented
