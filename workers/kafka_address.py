"""Which Kafka cluster to talk to: $KAFKA_BOOTSTRAP_SERVERS, the config, or the embedded one."""

from __future__ import annotations

from workers.devkafka import broker
from workers.settings import Settings

NO_BROKER = (
    "no Kafka broker: start the embedded one with `eventguard kafka start` "
    "(or `make run`), or set KAFKA_BOOTSTRAP_SERVERS=host:port"
)


class NoBroker(RuntimeError):
    pass


def bootstrap(settings: Settings) -> str:
    if settings.bootstrap_servers:
        return settings.bootstrap_servers
    running = broker.status()
    if running is None:
        raise NoBroker(NO_BROKER)
    return running.bootstrap


def faust_urls(servers: str) -> list[str]:
    return [f"kafka://{s.strip()}" for s in servers.split(",") if s.strip()]
