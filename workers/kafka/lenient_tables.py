"""Faust tables that skip a changelog record they cannot read, instead of never recovering.

Anyone who can write to the cluster can write to a changelog topic, and faust-streaming
0.15.3 stalls on a record it cannot read:

- Its conductor decodes a changelog record's key and value (JSON) before recovery sees
  it. A record that is not JSON or not UTF-8 is thrown into the changelog queue as the
  decode error (`faust/tables/recovery.py`, `_slurp_changelogs`: "Error in recovery").
  The record's offset is never counted, so recovery waits for it for good: the worker
  never finished recovering and never decided again (tests/chaos/test_side_topics_fuzz.py,
  300 garbage records on the usage changelog). LENIENT_JSON reads such a record as None.
- The memory store applies records in batches (`Table.apply_changelog_batch`); a key that
  cannot be a dict key (a JSON object) raises there, the batch is never cleared and every
  later record raises again. LenientTable applies such a batch again one record at a time
  and skips the record that fails.

What a garbage record leaves in a table (a None key, a value of the wrong shape) is for
the table's readers to ignore (workers/usage_agents/counts.py).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import faust
from faust.serializers import codecs

log = logging.getLogger(__name__)
LENIENT_JSON = "eventguard-json"


class _LenientJson(codecs.json):
    """JSON as Faust writes it; what is not JSON reads as None."""

    def _loads(self, s: bytes) -> Any:
        try:
            return super()._loads(s)
        except ValueError:  # orjson's decode error, and UnicodeDecodeError
            return None


codecs.register(LENIENT_JSON, _LenientJson())


class LenientTable(faust.Table):  # type: ignore[type-arg]
    """A table whose changelog is read with LENIENT_JSON (the app setting `Table`), and whose
    failed changelog batch is applied again one record at a time (the module's docstring).

    Upstream: no issue found. Remove when Faust's recovery skips a changelog record it
    cannot decode or apply, instead of waiting for it for good."""

    def __init__(self, app: Any, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        # Faust's default for a table without a key or value type ("json"), read leniently.
        if self.key_serializer == "json":
            self.key_serializer = LENIENT_JSON
        if self.value_serializer == "json":
            self.value_serializer = LENIENT_JSON

    def apply_changelog_batch(self, batch: Iterable[Any]) -> None:
        events = list(batch)
        try:
            super().apply_changelog_batch(events)
        except Exception:
            # Again one by one, in order: the ones applied before the failure are set again
            # to the same value, and each one that cannot be applied is skipped.
            for event in events:
                try:
                    super().apply_changelog_batch([event])
                except Exception as exc:
                    message = event.message
                    log.warning("table %s: skipped a changelog record it cannot apply at "
                                "%s-%d offset %d (%s)", self.name, message.topic,
                                message.partition, message.offset, type(exc).__name__)
