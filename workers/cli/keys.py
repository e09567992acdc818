"""`eventguard keys ...`: manage keys by publishing to auth-config.

Workers pick a change up from the topic within a second; nothing restarts.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import sys
import time
from typing import Any

import orjson

from workers import kafka_address, settings
from workers.auth import secrets
from workers.keys import admin
from workers.keys.store import KeyStore
from workers.keys.vault import Vault
from workers.usage import client as usage_client
from workers.usage import summary as usage_summary


def register(sub: Any) -> None:
    k = sub.add_parser("keys", help="add, rotate, revoke and inspect keys (auth-config)")
    k.add_argument("--config")
    ops = k.add_subparsers(dest="op", required=True)
    # `--config` is taken after the operation too (`keys add ID --config F`).
    config = argparse.ArgumentParser(add_help=False)
    config.add_argument("--config", default=argparse.SUPPRESS)
    add = functools.partial(ops.add_parser, parents=[config])
    add("gen", help="print a new high-entropy secret")
    a = add("add", help="add a key with new secrets (shown once)")
    a.add_argument("id")
    a.add_argument("--client", action="store_true", help="a browser secret (/api/v1/event)")
    a.add_argument("--server", action="store_true", help="a backend secret (/api/v1/s2s/event)")
    a.add_argument("--access", action="store_true", help="an access key + secret for signing")
    a.add_argument("--origin", action="append", default=[], help="allowed origin pattern")
    a.add_argument("--allow", action="append", default=[], help="allowed event type")
    a.add_argument("--jwt-provider", action="append", default=[])
    a.add_argument("--policy")
    r = add("rotate", help="a new secret; the old ones keep working for --overlap")
    r.add_argument("id")
    r.add_argument("--kind", choices=["client", "server", "access"], default="client")
    r.add_argument("--overlap", type=float, default=admin.DEFAULT_OVERLAP_S,
                   help="seconds the previous secrets stay valid (default 86400)")
    for name, text in (("revoke", "delete the key everywhere"), ("disable", "refuse its events"),
                       ("enable", "accept its events again"), ("show", "one key, no secrets")):
        add(name, help=text).add_argument("id")
    add("list", help="every key, no secrets")
    u = add("usage", help="last accepted/rejected times and counts per reason, last hour")
    u.add_argument("id", nargs="?", help="one key id (JSON); without it, one line per key")
    u.add_argument("--json", action="store_true", help="every key as JSON")
    u.add_argument("--url", help="the usage process's web server (default: usage.url)")
    # Before the usage process, usage was read from a worker's web server.
    u.add_argument("--worker", dest="url", help=argparse.SUPPRESS)
    c = add("check", help="is SECRET valid for key ID now? (exit 0 yes, 1 no)")
    c.add_argument("id")
    c.add_argument("secret", help="the secret, or - to read it from standard input")
    k.set_defaults(func=main)


def main(args: argparse.Namespace, _: list[str]) -> int:
    if args.op == "gen":
        print(secrets.generate())
        return 0
    conf = settings.load()
    if args.op == "usage":
        return _usage(args, args.url or conf.usage_url)
    store = KeyStore(kafka_address.bootstrap(conf), conf.topic("auth-config"))
    try:
        return asyncio.run(_run(args, store))
    except admin.KeyOpError as exc:
        print(f"eventguard keys: {exc}", file=sys.stderr)
        return 1


async def _run(args: argparse.Namespace, store: KeyStore) -> int:
    try:
        keys = (await store.load()).keys
        now = time.time()
        if args.op == "list":
            for each in sorted(keys.records(), key=lambda r: r.id):
                _print_row(admin.describe(each))
            if not len(keys):
                print("no keys; add one with `eventguard keys add ID --client`")
            return 0
        if args.op == "show":
            record = keys.get(args.id)
            if record is None:
                raise admin.NoSuchKey(f"no key {args.id}")
            print(orjson.dumps(admin.describe(record), option=orjson.OPT_INDENT_2).decode())
            return 0
        if args.op == "check":
            secret = sys.stdin.readline().strip() if args.secret == "-" else args.secret
            reason, detail = admin.check(keys, args.id, secret, now)
            print(f"{reason.value}: {detail}")
            return 0 if reason.accepted else 1
        change = _change(args, store, now)
        await store.publish(change)
    finally:
        await store.close()
    print(change.message)
    if change.shown:
        for label, value in change.shown.items():
            print(f"  {label}: {value}")
        print("Store these now: they are shown once and kept only as digests (or sealed).")
    return 0


def _change(args: argparse.Namespace, store: KeyStore, now: float) -> admin.Change:
    keys = store.state.keys
    if args.op == "add":
        return admin.add(keys, args.id, now=now, seal=Vault().seal, source="cli",
                         client=args.client, server=args.server, access=args.access,
                         origins=args.origin, allowed_events=args.allow,
                         jwt_providers=args.jwt_provider, policy=args.policy)
    if args.op == "rotate":
        return admin.rotate(keys, args.id, args.kind, now=now, seal=Vault().seal,
                            overlap_s=args.overlap)
    if args.op == "revoke":
        return admin.revoke(keys, args.id)
    return admin.set_disabled(keys, args.id, disabled=args.op == "disable")


def _usage(args: argparse.Namespace, usage_url: str) -> int:
    try:
        body = asyncio.run(usage_client.fetch(usage_url, args.id))
    except usage_client.Unavailable as exc:
        print(f"eventguard keys usage: {exc}", file=sys.stderr)
        return 1
    if args.id is not None or args.json:
        print(orjson.dumps(body, option=orjson.OPT_INDENT_2).decode())
        return 0
    for each in body.get("keys", []):
        print(usage_summary.row(each))
    if not body.get("keys"):
        print("no decisions in the last hour")
    return 0


def _print_row(d: dict[str, Any]) -> None:
    not_after = sorted(s["not_after"] for s in d["client_secrets"] + d["server_secrets"]
                       if s["not_after"])
    flags = " DISABLED" if d["disabled"] else ""
    print(f"{d['id']:<20} {','.join(d['secrets']) or '-':<22} "
          f"origins={','.join(d['origins']) or '*'}  created={d['created_at'] or '-'}  "
          f"not_after={not_after[0] if not_after else '-'}  source={d['source']}{flags}")
