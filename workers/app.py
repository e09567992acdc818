"""The Faust app, its topics and its table. Nothing else lives here.

`faust -A workers.app worker -l info` runs a worker on the cluster that
$KAFKA_BOOTSTRAP_SERVERS or the config names (`eventguard worker` names the
embedded broker when neither does). Agents are discovered from `workers.agents`.

Per-key usage is not here: it runs in a process of its own (workers/usage_app.py), so
that nothing in it can stop a decision.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import cast

import faust

from workers import kafka_address, preflight, settings
from workers.auth.state import AuthState
from workers.faust_app import build, raw_topic
from workers.kafka import eager_drain
from workers.keys.table import NAME, KeyState, KeyTable, changelog_topic
from workers.keys.vault import Unsealer

# `faust -A workers.app worker` imports this directly: a config mistake is one line and
# exit code 2 there too, as with `eventguard worker`.
try:
    config = settings.load()
    bootstrap = kafka_address.bootstrap(config)
except (settings.ConfigError, kafka_address.NoBroker) as exc:
    sys.stderr.write(f"eventguard: {exc}\n")
    raise SystemExit(2) from None

# `faust -A workers.app worker` waits for Kafka and the topics too (`eventguard worker`
# did already); importing the module anywhere else never connects.
if Path(sys.argv[0]).name == "faust" and "worker" in sys.argv and not preflight.done:
    preflight.run(bootstrap, [config.topic(t) for t in preflight.WORKER_TOPICS], None, "")

# The settings (commit interval, session timeout, producer) are in workers/faust_app.py,
# shared with the bare Faust baseline of `eventguard bench pipeline`.
# Faust's autodiscovery imports every module under `origin` too: with the whole `workers`
# package the worker loaded the ingest, the command line and the dev stack.
app = build(config, bootstrap, config.app_id, autodiscover=["workers.agents"],
            origin="workers.agents", GlobalTable=KeyTable)


def _topic(name: str) -> faust.TopicT:
    return app.topic(config.topic(name), key_type=bytes, value_type=bytes)


raw_events = raw_topic(app, config.topic("raw-events"))
eager_drain.RESET_WHEN_UNCOMMITTED.add(raw_events.get_topic_name())
accepted_events = _topic("accepted-events")
rejected_events = _topic("rejected-events")
audit_log = _topic("audit-log")
auth_config = _topic("auth-config")
nonces = _topic("nonces")  # nonces of signed requests (workers/agents/nonce_log.py)

# The key table: every auth-config record apply_config accepted. Decisions read the
# AuthState that each worker's KeyFollower builds from the table's changelog, not Faust's
# copy (docs/architecture.md, "The key table"). The options are the GlobalTable
# workaround its own source suggests against recovery loops.
key_state = KeyState(AuthState(max_body_bytes=config.max_body_bytes,
                               max_batch_events=config.max_batch_events, unseal=Unsealer()),
                     changelog_topic(config.app_id))
keys = cast(KeyTable, app.GlobalTable(
    NAME, partitions=1, default=None, key_type=bytes, value_type=bytes,
    synchronize_all_active_partitions=True, recovery_buffer_size=1,
    help="key/<id>, policy/<name> and provider/<id> records, as in auth-config"))
