"""Which Kafka cluster to talk to: $KAFKA_BOOTSTRAP_SERVERS, else the config.

The worker and the ingest run on any Kafka, so nothing here knows the embedded
development broker: the `eventguard` command finds that one and hands its address
on through $KAFKA_BOOTSTRAP_SERVERS (workers/cli/main.py).
"""

from __future__ import annotations

from workers.settings import BOOTSTRAP_ENV, Settings

NO_BROKER = (
    f"no Kafka address: set {BOOTSTRAP_ENV}=host:port (or kafka.bootstrap_servers in the "
    "config), or start the embedded broker with `eventguard kafka start` and run through "
    "`eventguard`, which finds it (a bare `faust -A workers.app worker` needs "
    f"{BOOTSTRAP_ENV}=$(eventguard kafka status))"
)


class NoBroker(RuntimeError):
    pass


def bootstrap(settings: Settings) -> str:
    if settings.bootstrap_servers:
        return settings.bootstrap_servers
    raise NoBroker(NO_BROKER)


def faust_urls(servers: str) -> list[str]:
    return [f"kafka://{s.strip()}" for s in servers.split(",") if s.strip()]
