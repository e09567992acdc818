"""Rate-limit aiokafka's log lines in the worker, as the ingest does.

While the broker is away, aiokafka logs every failed connection and metadata
attempt, thousands of lines a minute per client. Faust sets up logging when
the worker starts, so the filter is installed by a task, after that.
"""

from __future__ import annotations

from workers import log_limits
from workers.app import app


@app.task
async def quiet_kafka_logs() -> None:
    log_limits.install()
