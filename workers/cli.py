"""`eventguard ...`: one entry point for the broker, topics, ingest, worker and tools."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Sequence

from workers import kafka_address, settings
from workers import send as send_command
from workers.bench import METHODS
from workers.keys import commands as keys_commands


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args, rest = parser.parse_known_args(argv)
    if getattr(args, "config", None):
        os.environ[settings.CONFIG_ENV] = os.path.abspath(args.config)
    if args.command != "worker" and rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    try:
        return int(args.func(args, rest) or 0)
    except (kafka_address.NoBroker, settings.ConfigError) as exc:
        print(f"eventguard: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="eventguard", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    k = sub.add_parser("kafka", help="the embedded local Kafka broker")
    k.add_argument("action", choices=["start", "stop", "status", "provision"])
    k.set_defaults(func=_kafka)

    t = sub.add_parser("topics", help="create or verify the topics in topics/")
    t.add_argument("action", choices=["apply"])
    t.add_argument("--config")
    t.set_defaults(func=_topics)

    i = sub.add_parser("ingest", help="run the HTTP ingest")
    i.add_argument("--config")
    i.add_argument("--host", default="127.0.0.1")
    i.add_argument("--port", type=int, default=8001)
    i.add_argument("--processes", type=int, default=1,
                   help="ingest processes sharing the port (SO_REUSEPORT), each with its own "
                        "Kafka producer; about one per spare CPU core")
    i.set_defaults(func=_ingest)

    w = sub.add_parser("worker", help="run a Faust worker (extra args go to `faust worker`)")
    w.add_argument("--config")
    w.set_defaults(func=_worker)

    tl = sub.add_parser("tail", help="print a topic's records as JSON lines")
    tl.add_argument("topic")
    tl.add_argument("--config")
    tl.add_argument("--from-beginning", action="store_true")
    tl.add_argument("--max", type=int, default=0, help="stop after N records")
    tl.add_argument("--timeout", type=float, default=0, help="stop after N idle seconds")
    tl.set_defaults(func=_tail)

    r = sub.add_parser("run", help="the demo: broker, topics, ingest, worker, sample events")
    r.add_argument("--config", default=None)
    r.add_argument("--port", type=int, default=8001)
    r.add_argument("--no-wait", action="store_true", help="exit after the samples")
    r.set_defaults(func=_run)

    keys_commands.register(sub)
    send_command.register(sub)

    b = sub.add_parser("bench", help="benchmarks that print numbers and ratios")
    b.add_argument("what", choices=["pipeline", "propagation", "ingest", "latency"])
    b.add_argument("--config")
    b.add_argument("-n", "--events", type=int, default=20000, help="pipeline: events")
    b.add_argument("--trials", type=int, default=20, help="propagation: key changes")
    b.add_argument("--method", action="append", choices=list(METHODS),
                   help="pipeline: only these sender methods (default: all)")
    b.add_argument("--seconds", type=float, default=None,
                   help="ingest: per run (default 10); latency: of steady load (default 30)")
    b.add_argument("--connections", type=int, action="append",
                   help="ingest: connection counts (default: 32 and 128)")
    b.add_argument("--processes", type=int, action="append",
                   help="ingest: ingest process counts to run (default: 1 and 2); "
                        "pipeline: processes per pass (default: 1)")
    b.add_argument("--rate", type=float, default=2000.0, help="latency: events/s (default 2000)")
    b.set_defaults(func=_bench)
    return p


def _kafka(args: argparse.Namespace, _: list[str]) -> int:
    from workers.devkafka import broker

    external = os.environ.get(settings.BOOTSTRAP_ENV)
    if external and args.action in ("start", "status"):
        print(f"using KAFKA_BOOTSTRAP_SERVERS={external}; the embedded broker is not used")
        return 0
    try:
        if args.action == "provision":
            print(f"Kafka jars ready in {broker.provision()}")
        elif args.action == "start":
            state = broker.start()
            print(f"Kafka running at {state.bootstrap} (pid {state.pid}, log {broker.log_file()})")
        elif args.action == "stop":
            print("Kafka stopped" if broker.stop() else "Kafka was not running")
        else:
            running = broker.status()
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
                                         conf.replication_factor)):
        print(line)
    return 0


def _ingest(args: argparse.Namespace, _: list[str]) -> int:
    from workers.ingest.main import serve

    _logging()
    conf = settings.load()
    return serve(conf, kafka_address.bootstrap(conf), args.host, args.port, args.processes)


def _worker(args: argparse.Namespace, rest: list[str]) -> int:
    from workers.app import app

    # Several workers share a host in dev and tests; Faust's web server (6066) would clash.
    extra = rest if any(a.startswith(("-l", "--loglevel")) for a in rest) else [*rest, "-l", "info"]
    sys.argv = ["eventguard", "worker", "--without-web", *extra]
    app.main()
    return 0


def _tail(args: argparse.Namespace, _: list[str]) -> int:
    from workers.tail import tail

    conf = settings.load()
    bootstrap = kafka_address.bootstrap(conf)
    return asyncio.run(tail(bootstrap, conf.topic(args.topic), args.from_beginning, args.max,
                            args.timeout))


def _run(args: argparse.Namespace, _: list[str]) -> int:
    from workers.demo import run

    return run(args.config, args.port, wait=not args.no_wait)


def _bench(args: argparse.Namespace, _: list[str]) -> int:
    from workers.bench import ingest, latency, pipeline, propagation

    bootstrap = kafka_address.bootstrap(settings.load())
    if args.what == "ingest":
        return ingest.run(bootstrap, args.seconds or 10.0, tuple(args.connections or (32, 128)),
                          tuple(args.processes or (1, 2)))
    if args.what == "latency":
        return asyncio.run(latency.run(bootstrap, args.rate, args.seconds or 30.0))
    if args.what == "propagation":
        return asyncio.run(propagation.run(bootstrap, args.trials))
    return asyncio.run(pipeline.run(bootstrap, args.events, tuple(args.method or METHODS),
                                    (args.processes or [1])[0]))


def _logging() -> None:
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


if __name__ == "__main__":
    sys.exit(main())
