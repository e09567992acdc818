"""What the HTTP routes need from Kafka: the Sink protocol, its errors and its check.

Kafka access is injected, so the routes are testable without a broker and the
status codes stay honest: 200 only after Kafka acknowledged the record.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from workers.ingest.metadata import RawRecord


class SinkUnavailable(RuntimeError):
    """Kafka did not take the record (unreachable, timed out, refused it): 503."""


class TopicMissing(SinkUnavailable):
    """The topic does not exist: 503 at once, with this reason, not after a timeout."""


class RecordTooLarge(RuntimeError):
    """Kafka refused the record for its size; retrying cannot help: 413."""


@dataclass(frozen=True)
class Check:
    """What /health and /ready report; `problem` says why when one of them is false."""

    reachable: bool  # Kafka answered a metadata request and the producer is not broken
    ready: bool  # and the topic has a leader for every partition, and writes succeed
    problem: str | None = None


class Sink(Protocol):
    async def send(self, record: RawRecord) -> None:
        """Return once Kafka acknowledged the record; raise SinkUnavailable or RecordTooLarge."""

    async def check(self) -> Check: ...
