"""The Faust app, its topics and its table. Nothing else lives here.

`faust -A workers.app worker -l info` runs a worker on the cluster that
$KAFKA_BOOTSTRAP_SERVERS or the config names (`eventguard worker` names the
embedded broker when neither does). Agents are discovered from `workers.agents`.
"""

from __future__ import annotations

import faust

from workers import kafka_address, settings
from workers.faust_app import build, raw_topic

config = settings.load()
try:
    _bootstrap = kafka_address.bootstrap(config)
except kafka_address.NoBroker as exc:
    raise SystemExit(f"eventguard: {exc}") from None

# The settings (commit interval, session timeout, producer) are in workers/faust_app.py,
# shared with the bare Faust baseline of `eventguard bench pipeline`.
# Faust's autodiscovery imports every module under `origin` too: with the whole `workers`
# package the worker loaded the ingest, the command line and the dev stack.
app = build(config, _bootstrap, config.app_id, autodiscover=["workers.agents"],
            origin="workers.agents")


def _topic(name: str) -> faust.TopicT:
    return app.topic(config.topic(name), key_type=bytes, value_type=bytes)


raw_events = raw_topic(app, config.topic("raw-events"))
accepted_events = _topic("accepted-events")
rejected_events = _topic("rejected-events")
audit_log = _topic("audit-log")
auth_config = _topic("auth-config")
# The key table's changelog: validated auth-config records, read whole by every
# worker. Not a faust.Table: see docs/architecture.md, "The key table".
auth_state = _topic("auth-state")
nonces = _topic("nonces")  # nonces of signed requests (workers/agents/nonce_log.py)
