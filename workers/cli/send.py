"""`eventguard send`: post one event the way a browser, a backend, a JWT holder or
a signing client would, then show where it went."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

import orjson

from workers import kafka_address, settings
from workers.auth import events
from workers.cli.decisions import Collector
from workers.client import post_event


def register(sub: Any) -> None:
    s = sub.add_parser("send", help="send one event and show the decision "
                                    "(exit 1 when rejected)")
    s.add_argument("--config")
    s.add_argument("--url", default="http://127.0.0.1:8001", help="the ingest")
    s.add_argument("--s2s", action="store_true", help="backend endpoint (server secret)")
    s.add_argument("--token", help="client or server secret")
    s.add_argument("--jwt", help="a JWT, sent as Authorization: Bearer")
    s.add_argument("--access-key")
    s.add_argument("--access-secret", help="signs the request (HMAC-SHA256)")
    s.add_argument("--origin", help="Origin header, as a browser sends it")
    s.add_argument("--event-type", default="page")
    s.add_argument("--body", help="the whole JSON body instead of {event_type: ...}")
    s.add_argument("--no-wait", action="store_true", help="do not wait for the decision")
    s.set_defaults(func=main)


def main(args: argparse.Namespace, _: list[str]) -> int:
    try:
        event = orjson.loads(args.body) if args.body else {"event_type": args.event_type}
    except orjson.JSONDecodeError:
        print("eventguard send: --body is not JSON", file=sys.stderr)
        return 2
    return asyncio.run(_send(args, event))


async def _send(args: argparse.Namespace, event: Any) -> int:
    conf = settings.load()
    collector = None if args.no_wait else Collector(kafka_address.bootstrap(conf),
                                                    prefix=conf.topic_prefix)
    if collector:
        await collector.__aenter__()
    try:
        status, answer = await post_event(
            args.url, event, s2s=args.s2s, token=args.token, jwt=args.jwt,
            access_key=args.access_key, access_secret=args.access_secret, origin=args.origin)
        print(f"HTTP {status} {orjson.dumps(answer).decode()}")
        if status != 200 or collector is None:
            return 0 if status == 200 else 1
        rid = str(answer["request_id"])
        parsed, batch = events.parse(orjson.dumps(event))
        ids = [f"{rid}:{i}" for i in range(len(parsed))] if batch else [rid]
        rejected = 0
        for eid in ids:
            try:
                got = await collector.decision(eid, timeout_s=15)
            except TimeoutError:
                print(f"{eid}: no decision in 15 s; is a worker running?")
                return 1
            audit = got["audit-log"][0]
            where = "accepted" if got.get("accepted-events") else "rejected"
            rejected += where == "rejected"
            detail = f" ({audit['detail']})" if audit["detail"] else ""
            print(f"{eid}: {where} {audit['reason']}{detail} key={audit['key_id']} "
                  f"method={audit['method']}")
        return 1 if rejected else 0
    finally:
        if collector:
            await collector.__aexit__()
