"""`eventguard bench ...`: the command line of the benchmarks in workers/bench/."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from workers import kafka_address, settings
from workers.bench import METHODS


def register(sub: Any) -> None:
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
    b.add_argument("--without-usage", dest="usage", action="store_false",
                   help="pipeline: no usage process beside the worker (by default one runs, "
                        "as in a deployment, and reads the worker's audit-log)")
    b.set_defaults(func=main)


def main(args: argparse.Namespace, _: list[str]) -> int:
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
                                    (args.processes or [1])[0], usage=args.usage))
