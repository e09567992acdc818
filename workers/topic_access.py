"""Before a process reads a topic: does it exist, and may this Kafka user see it?

aiokafka answers neither question well. A consumer assigned a missing topic, or one
its user may not describe, asks for the topic's metadata again and again, logging each
miss (thousands of lines a second), and a Faust app ends with a traceback. Asked once
here, the answer is one line; a process that needs its topics waits for them
(workers/preflight.py) instead of spinning.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import TopicAuthorizationFailedError, UnknownTopicOrPartitionError

from workers import kafka_security

APPLY = "`eventguard topics apply` creates {} (with the prefix of EVENTGUARD_TOPIC_PREFIX)"


class MissingTopics(RuntimeError):
    """Topics that do not exist; the message names them and the fix."""

    def __init__(self, topics: list[str]) -> None:
        self.topics = topics
        names = ", ".join(topics)
        super().__init__(f"no topic {names}; {APPLY.format('it')}" if len(topics) == 1
                         else f"no topics {names}; {APPLY.format('them')}")


async def missing(bootstrap: str, topics: Iterable[str],
                  client_options: dict[str, Any] | None = None) -> list[str]:
    """The topics among `topics` that do not exist; raises TopicAuthorizationFailedError
    for the first one this user may not see."""
    admin = AIOKafkaAdminClient(
        **(kafka_security.options() if client_options is None else client_options),
        bootstrap_servers=bootstrap)
    try:
        await admin.start()
        described = await admin.describe_topics(list(topics))
    finally:
        await admin.close()  # also when cancelled in start (a port that is not Kafka)
    absent = []
    for topic in described:
        if topic["error_code"] == TopicAuthorizationFailedError.errno:
            raise TopicAuthorizationFailedError(topic["topic"])
        if topic["error_code"] == UnknownTopicOrPartitionError.errno:
            absent.append(topic["topic"])
    return sorted(absent)


async def check(bootstrap: str, topics: Iterable[str],
                client_options: dict[str, Any] | None = None) -> None:
    """Raise MissingTopics or TopicAuthorizationFailedError unless every topic is there
    for this user."""
    absent = await missing(bootstrap, topics, client_options)
    if absent:
        raise MissingTopics(absent)
