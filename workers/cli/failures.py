"""Expected failures as one line and an exit code, instead of a traceback.

2 means the command line or the config is wrong (usage); 1 means the environment is (a
port taken, Kafka or the ingest unreachable, a Kafka user refused). `eventguard --debug`
shows the traceback instead."""

from __future__ import annotations

import errno

import aiohttp
from aiokafka.errors import KafkaError

from workers import kafka_address, kafka_security, settings, topic_access
from workers.keys.vault import VaultError

USAGE, ENVIRONMENT = 2, 1


def one_line(exc: BaseException) -> tuple[str, int] | None:
    """(the line, the exit code) for an expected failure, else None."""
    if isinstance(exc, kafka_address.NoBroker | settings.ConfigError | VaultError):
        return str(exc), USAGE
    if isinstance(exc, topic_access.MissingTopics):
        return str(exc), ENVIRONMENT
    if isinstance(exc, KafkaError):
        line = kafka_security.refusal(exc) or kafka_security.unreachable(exc)
        return (line, ENVIRONMENT) if line is not None else None
    if isinstance(exc, aiohttp.ClientConnectorError):
        return (f"cannot reach {exc.host}:{exc.port} ({exc.strerror or 'refused'}); is the "
                "ingest running there? (`eventguard ingest`, or --url)"), ENVIRONMENT
    if isinstance(exc, OSError) and exc.errno == errno.EADDRINUSE:
        return (f"{exc.strerror or 'address in use'}: another process listens on that port; "
                "stop it, or choose another port (--port, --admin-port, --web-port)"), ENVIRONMENT
    return None
