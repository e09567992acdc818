"""`eventguard ingest`: run the HTTP ingest against a Kafka cluster."""

from __future__ import annotations

import logging

from aiohttp import web

from workers import log_limits, topics
from workers.ingest.admin import AdminAPI
from workers.ingest.kafka_sink import KafkaSink
from workers.ingest.server import create_app
from workers.keys.store import KeyStore
from workers.keys.vault import Vault
from workers.settings import RECORD_OVERHEAD, ConfigError, Settings

log = logging.getLogger(__name__)

RAW_EVENTS = "raw-events"


def serve(conf: Settings, bootstrap: str, host: str, port: int) -> int:
    check_body_limit(conf.max_body_bytes, topics.load_specs())
    log_limits.install()
    topic = conf.topic(RAW_EVENTS)
    sink = KafkaSink(bootstrap, topic, conf.max_body_bytes)
    store = KeyStore(bootstrap, conf.topic("auth-config"))
    token = conf.admin_token.value if conf.admin_token else None
    api = AdminAPI(store, token, lambda secret: Vault().seal(secret))
    app = create_app(sink, conf, api)

    async def close_sink(_: web.Application) -> None:
        await sink.close()
        await store.close()

    app.on_cleanup.append(close_sink)
    log.info("ingest: http://%s:%d -> %s on %s", host, port, topic, bootstrap)
    web.run_app(app, host=host, port=port, print=None, access_log=None)
    return 0


def check_body_limit(max_body_bytes: int, specs: list[topics.TopicSpec]) -> None:
    """Refuse a body limit the raw-events topic cannot hold: Kafka would refuse
    such records, and clients would get an error instead of a clear 413."""
    spec = next((s for s in specs if s.name == RAW_EVENTS), None)
    if spec is None or "max.message.bytes" not in spec.config:
        return  # no topic specs here (an installed package): Kafka's answer will tell
    topic_max = int(spec.config["max.message.bytes"])
    fits = topic_max - RECORD_OVERHEAD
    if max_body_bytes > fits:
        raise ConfigError(
            f"ingest.max_body_bytes is {max_body_bytes}, but {RAW_EVENTS} takes records up to "
            f"{topic_max} bytes (max.message.bytes in topics/{RAW_EVENTS}.yaml), of which "
            f"{RECORD_OVERHEAD} are kept for headers: lower max_body_bytes to {fits} or less, "
            f"or raise max.message.bytes in topics/ and run `eventguard topics apply`")
