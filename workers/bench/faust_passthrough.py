"""The second baseline of `eventguard bench pipeline`: a bare Faust agent.

It copies each raw-events record to accepted-events and audit-log, as the worker
writes a decision and an audit record per event, with the worker's own app settings
(workers/faust_app.py), its batching and its send path (workers/agents/outbox.py), and
no decision. Run like a worker, through Faust's worker CLI:
`python -m workers.bench.faust_passthrough worker --without-web -l info`
with KAFKA_BOOTSTRAP_SERVERS and EVENTGUARD_TOPIC_PREFIX set.
"""

from __future__ import annotations

import sys
from typing import Any

from workers import kafka_address, settings
from workers.agents import outbox
from workers.faust_app import BATCH, BATCH_WAIT_S, build, raw_topic

config = settings.load()
app = build(config, kafka_address.bootstrap(config), config.app_id + "-faust-passthrough",
            origin="workers.bench.faust_passthrough")
raw_events = raw_topic(app, config.topic("raw-events"))
OUTPUTS = (config.topic("accepted-events"), config.topic("audit-log"))


@app.agent(raw_events)
async def copy(stream: Any) -> None:
    async for batch in stream.take_events(BATCH, within=BATCH_WAIT_S):
        out = outbox.Outputs()
        for event in batch:
            msg = event.message
            for topic in OUTPUTS:
                out.add(topic, msg.key, msg.value)
        await outbox.send_all(app.producer, out)


if __name__ == "__main__":
    sys.argv = [sys.argv[0], *(sys.argv[1:] or ["worker", "--without-web", "-l", "info"])]
    app.main()
