"""`eventguard ingest`: run the HTTP ingest against a Kafka cluster."""

from __future__ import annotations

import logging

from aiohttp import web

from workers.ingest.admin import AdminAPI
from workers.ingest.kafka_sink import KafkaSink
from workers.ingest.server import create_app
from workers.keys.store import KeyStore
from workers.keys.vault import Vault
from workers.settings import Settings

log = logging.getLogger(__name__)


def serve(conf: Settings, bootstrap: str, host: str, port: int) -> int:
    topic = conf.topic("raw-events")
    sink = KafkaSink(bootstrap, topic, conf.max_body_bytes)
    store = KeyStore(bootstrap, conf.topic("auth-config"))
    token = conf.admin_token.value if conf.admin_token else None
    api = AdminAPI(store, token, lambda secret: Vault().seal(secret))
    app = create_app(sink, conf.max_body_bytes, api)

    async def close_sink(_: web.Application) -> None:
        await sink.close()
        await store.close()

    app.on_cleanup.append(close_sink)
    log.info("ingest: http://%s:%d -> %s on %s", host, port, topic, bootstrap)
    web.run_app(app, host=host, port=port, print=None, access_log=None)
    return 0
