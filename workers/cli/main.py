"""`eventguard ...`: one entry point for the broker, topics, ingest, worker and tools."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any

from workers import kafka_address, log_format, log_limits, preflight, settings
from workers.cli import bench, failures, kafka_cluster, keys, send
from workers.devstack import broker
from workers.devstack.cluster import Cluster

# These commands make or report the embedded broker themselves.
OWN_BROKER = ("kafka", "run")
# These run a Faust app and hand extra arguments on to `faust worker`.
FAUST_COMMANDS = ("worker", "usage")
# Their logs are the operator's: aiokafka's lines stay in them.
LONG_RUNNING = (*FAUST_COMMANDS, "ingest", "run", "bench")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, rest = parser.parse_known_args(argv)
    if getattr(args, "config", None):
        os.environ[settings.CONFIG_ENV] = os.path.abspath(args.config)
    if getattr(args, "log_format", None):
        # The Faust app and every process this command starts read it there.
        os.environ[settings.LOG_FORMAT_ENV] = args.log_format
    if args.command not in FAUST_COMMANDS and rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    if args.command not in OWN_BROKER:
        _name_the_embedded_broker()
    # A short command says what went wrong in its own line (failures.py); aiokafka's
    # per-attempt lines would only come before it.
    with log_limits.silenced("aiokafka", args.command not in LONG_RUNNING and not args.debug):
        try:
            return int(args.func(args, rest) or 0)
        except KeyboardInterrupt:
            return 130
        except Exception as exc:
            known = None if args.debug else failures.one_line(exc)
            if known is None:
                raise
            _fail(args, known[0])
            return known[1]


def _fail(args: argparse.Namespace, problem: str) -> None:
    """A long-running command in JSON mode says why it cannot start as a JSON line too."""
    try:
        fmt = log_format.chosen() if hasattr(args, "log_format") else log_format.TEXT
    except settings.ConfigError:
        fmt = log_format.TEXT
    if fmt == log_format.JSON:
        if not logging.getLogger().handlers:
            log_format.configure(fmt)
        logging.getLogger("eventguard").error(problem)
    else:
        print(f"eventguard: {problem}", file=sys.stderr)


def build_parser() -> argparse.ArgumentParser:
    """The whole `eventguard` command line (docker-compose.yml's commands are checked
    against it: tests/unit/test_docker_compose.py)."""
    p = argparse.ArgumentParser(prog="eventguard", description=__doc__)
    p.add_argument("--debug", action="store_true",
                   help="show the traceback of an expected failure instead of one line")
    sub = p.add_subparsers(dest="command", required=True)
    # For the long-running commands.
    logs = argparse.ArgumentParser(add_help=False)
    logs.add_argument("--log-format", choices=log_format.FORMATS, default=None,
                      help="text (the default) or json: one JSON object per log line; "
                           f"else ${settings.LOG_FORMAT_ENV}")

    k = sub.add_parser("kafka", help="the embedded local Kafka broker, or a local cluster")
    k.add_argument("action", choices=["start", "stop", "status", "provision"])
    k.add_argument("--brokers", type=int, default=1,
                   help="start: a cluster of N broker+controller nodes (replication factor "
                        "3, min.insync.replicas 2); 1 is the single dev broker")
    k.add_argument("--broker", type=int, metavar="N",
                   help="start or stop only node N of the cluster")
    k.add_argument("--secure", action="store_true",
                   help="start: SASL/SCRAM over TLS and ACLs, one Kafka user per role "
                        "(docs/operations.md, least privilege)")
    k.set_defaults(func=_kafka)

    t = sub.add_parser("topics", help="create or verify the topics in topics/")
    t.add_argument("action", choices=["apply"])
    t.add_argument("--config")
    t.set_defaults(func=_topics)

    i = sub.add_parser("ingest", help="run the HTTP ingest", parents=[logs])
    i.add_argument("--config")
    i.add_argument("--host", default="127.0.0.1")
    i.add_argument("--port", type=int, default=8001)
    i.add_argument("--admin-port", type=int, default=None,
                   help="the admin API and console's port (default from ingest.admin_bind, "
                        "127.0.0.1:8002); they start only with server.admin_token set")
    i.add_argument("--admin-host", default=None,
                   help="the admin listener's address (default from ingest.admin_bind); "
                        "in a container, 0.0.0.0 with the port published on loopback")
    i.add_argument("--processes", type=int, default=1,
                   help="ingest processes sharing the port (SO_REUSEPORT), each with its own "
                        "Kafka producer; about one per spare CPU core")
    i.set_defaults(func=_ingest)

    w = sub.add_parser("worker", help="run a Faust worker (extra args go to `faust worker`)",
                       parents=[logs])
    _faust_process_args(w, "serve /health, /ready and /metrics on this port (Faust's web "
                           "server; default worker.web_port, 6066; --without-web: none)")
    w.set_defaults(func=_worker)

    u = sub.add_parser("usage", help="run the usage process: per-key usage from audit-log, "
                                     "beside the workers (extra args go to `faust worker`)",
                       parents=[logs])
    _faust_process_args(u, "serve per-key usage, /health, /ready and /metrics on this port "
                           "(default usage.web_port, 6067)")
    u.set_defaults(func=_usage)

    tl = sub.add_parser("tail", help="print a topic's records as JSON lines", parents=[logs])
    tl.add_argument("topic")
    tl.add_argument("--config")
    tl.add_argument("--from-beginning", action="store_true")
    tl.add_argument("--max", type=int, default=0, help="stop after N records")
    tl.add_argument("--timeout", type=float, default=0, help="stop after N idle seconds")
    tl.set_defaults(func=_tail)

    r = sub.add_parser("run", help="the demo: broker, topics, ingest, worker, usage, sample "
                                   "events",
                       parents=[logs])
    r.add_argument("--config", default=None)
    r.add_argument("--port", type=int, default=8001)
    r.add_argument("--no-wait", action="store_true", help="exit after the samples")
    r.set_defaults(func=_run)

    keys.register(sub)
    send.register(sub)
    bench.register(sub)
    return p


def _name_the_embedded_broker() -> None:
    """The worker and the ingest only read settings, so that they run on any Kafka. With no
    cluster named, the embedded broker's address goes into the environment: this process
    (a worker builds its Faust app from it) and every process it starts read it there."""
    if os.environ.get(settings.BOOTSTRAP_ENV):
        return
    try:
        if settings.load().bootstrap_servers:
            return
    except settings.ConfigError:
        return  # the command itself says what is wrong with the config
    running = broker.status()
    if running is not None:
        os.environ[settings.BOOTSTRAP_ENV] = running.bootstrap
    elif (local := Cluster()).running():
        os.environ[settings.BOOTSTRAP_ENV] = local.bootstrap


def _kafka(args: argparse.Namespace, _: list[str]) -> int:
    external = os.environ.get(settings.BOOTSTRAP_ENV)
    if external and args.action in ("start", "status"):
        print(f"using KAFKA_BOOTSTRAP_SERVERS={external}; the embedded broker is not used")
        return 0
    try:
        if args.action == "provision":
            print(f"Kafka jars ready in {broker.provision()}")
            return 0
        local = Cluster()
        if args.broker is not None or args.brokers > 1 or args.secure:
            return kafka_cluster.command(local, args.action, args.brokers, args.broker,
                                         args.secure)
        if args.action == "start":
            if local.running():
                print(f"a local Kafka cluster runs at {local.bootstrap} "
                      "(`eventguard kafka stop` stops it)")
                return 0
            state = broker.start()
            print(f"Kafka running at {state.bootstrap} (pid {state.pid}, log {broker.log_file()})")
        elif args.action == "stop":
            single = broker.stop()
            nodes = local.stop()
            print("Kafka stopped" if single or nodes else "Kafka was not running")
        else:
            running = broker.status()
            if running is None and local.layout() is not None:
                return kafka_cluster.status(local)
            if running is None:
                print("Kafka is not running; start it with `eventguard kafka start`")
                return 1
            print(running.bootstrap)
    except broker.BrokerError as exc:
        print(f"eventguard: {exc}", file=sys.stderr)
        return 1
    return 0


def _topics(args: argparse.Namespace, _: list[str]) -> int:
    from workers import topics

    conf = settings.load()
    bootstrap = kafka_address.bootstrap(conf)
    specs = topics.load_specs()
    if not specs:
        print(f"eventguard: no topic specs in {topics.topics_dir()}; run from the project "
              "folder, which has topics/", file=sys.stderr)
        return 2
    for line in asyncio.run(topics.apply(bootstrap, specs, conf.topic_prefix,
                                         conf.replication_factor, conf.min_insync_replicas)):
        print(line)
    return 0


def _ingest(args: argparse.Namespace, _: list[str]) -> int:
    from workers.ingest.main import serve

    log_format.configure(log_format.chosen())
    conf = settings.load()
    return serve(conf, kafka_address.bootstrap(conf), args.host, args.port, args.processes,
                 args.admin_port, args.admin_host)


def _worker(args: argparse.Namespace, rest: list[str]) -> int:
    log_format.configure(log_format.chosen())  # until Faust sets up its own logging
    # A bad config or no broker is said here, as a log line in the chosen format;
    # workers.app would exit with plain text.
    conf = settings.load()
    _check_keys(conf)
    preflight.run(kafka_address.bootstrap(conf),
                  [conf.topic(t) for t in preflight.WORKER_TOPICS],
                  _web_port(args, rest, conf.worker_web_port), args.web_bind)
    from workers.app import app

    # Faust's web server serves /health, /ready and /metrics: on --web-port, else
    # worker.web_port; `--without-web` turns it off.
    return _faust_main(app, args, rest, conf.worker_web_port)


def _usage(args: argparse.Namespace, rest: list[str]) -> int:
    log_format.configure(log_format.chosen())  # until Faust sets up its own logging
    conf = settings.load()
    preflight.run(kafka_address.bootstrap(conf), [conf.topic("audit-log")],
                  _web_port(args, rest, conf.usage_web_port), args.web_bind)
    from workers.usage_app import app

    # Per-key usage, /health, /ready and /metrics: on --web-port, else usage.web_port.
    return _faust_main(app, args, rest, conf.usage_web_port)


def _check_keys(conf: settings.Settings) -> None:
    """The config's own keys, checked before the worker starts: a mistake in them stops
    it in one line, instead of a worker that starts with none of them."""
    from workers.keys import jitsu

    if conf.path is not None and not conf.keys_declared:
        # A misspelt `api_keys:` would leave no keys, or the generated demo key.
        raise settings.ConfigError(
            f"config {conf.path} has no api_keys: add the keys there, or write `api_keys: []` "
            "to manage them only with `eventguard keys` and the admin API")
    if conf.api_keys is None or jitsu.is_remote(conf.api_keys):
        return  # a URL's keys are fetched and checked by the leader, live
    try:
        jitsu.parse(conf.api_keys, lambda plain: plain, "config", conf.s2s_auth)
    except jitsu.KeyConfigError as exc:
        raise settings.ConfigError(f"config {conf.path}: {exc}") from None


def _web_port(args: argparse.Namespace, rest: list[str], default_port: int) -> int | None:
    """--web-port, else the config's port; None with `--without-web`."""
    if args.web_port is None and "--without-web" not in rest:
        return default_port
    return int(args.web_port) if args.web_port is not None else None


def _faust_main(app: Any, args: argparse.Namespace, rest: list[str], default_port: int
                ) -> int:
    web_port = _web_port(args, rest, default_port)
    # Faust's banner and start-up spinner are not log lines: JSON mode leaves them out.
    sys.argv = faust_worker_argv(web_port, args.web_bind, rest,
                                 quiet=log_format.chosen() == log_format.JSON)
    app.main()
    return 0


def faust_worker_argv(web_port: int | None, web_bind: str, rest: list[str],
                      quiet: bool = False) -> list[str]:
    """`faust worker`'s arguments for `eventguard worker`; `quiet`: no banner, no spinner."""
    # None: no web server (`--without-web`, which may be in `rest` already).
    web = (["--web-port", str(web_port), "--web-bind", web_bind] if web_port is not None
           else [] if "--without-web" in rest else ["--without-web"])
    extra = rest if any(a.startswith(("-l", "--loglevel")) for a in rest) else [*rest, "-l", "info"]
    return ["eventguard", *(["--quiet"] if quiet else []), "worker", *web, *extra]


def _tail(args: argparse.Namespace, _: list[str]) -> int:
    from workers.cli.tail import tail

    log_format.configure(log_format.chosen(), logging.WARNING)
    conf = settings.load()
    bootstrap = kafka_address.bootstrap(conf)
    return asyncio.run(tail(bootstrap, conf.topic(args.topic), args.from_beginning, args.max,
                            args.timeout))


def _run(args: argparse.Namespace, _: list[str]) -> int:
    from workers.cli.demo import run

    # Warnings only: the demo's own output is its table on stdout.
    log_format.configure(log_format.chosen(), logging.WARNING)
    return run(args.config, args.port, wait=not args.no_wait)


def _faust_process_args(parser: argparse.ArgumentParser, port_help: str) -> None:
    """The arguments a Faust process (`worker`, `usage`) takes besides Faust's own."""
    parser.add_argument("--config")
    parser.add_argument("--web-port", type=int, help=port_help)
    parser.add_argument("--web-bind", default="127.0.0.1",
                        help="the address the web server listens on (0.0.0.0: every interface)")
