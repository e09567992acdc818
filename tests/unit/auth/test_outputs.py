"""Output records stay under the topic's size limit, whatever the sender sent."""

import orjson

from workers.auth import outputs
from workers.auth.decision import Decision, Method
from workers.auth.reasons import Reason
from workers.auth.request import RawRequest

REQ = RawRequest(request_id="r1", body=b"", endpoint="s2s", user_agent="ua", path="/p")


def test_small_records_pass_unchanged() -> None:
    d = Decision("r1", Reason.OK, key_id="k", method=Method.SERVER_SECRET, event={"a": 1})
    same, value = outputs.bounded(REQ, d, 10_000)
    assert same is d and orjson.loads(value)["event"] == {"a": 1}


def test_an_oversized_record_becomes_a_compact_rejection() -> None:
    event = {"event_type": "page", "blob": "x" * 50_000}
    for d in (Decision("r1", Reason.OK, key_id="k", method=Method.SERVER_SECRET, event=event,
                       event_type="page"),
              Decision("r1", Reason.JWT_REQUIRED, "event type 'page'", key_id="k",
                       event=event, event_type="page")):
        compact, value = outputs.bounded(REQ, d, 10_000)
        record = orjson.loads(value)
        assert len(value) < 1000
        assert compact.reason is Reason.PAYLOAD_TOO_LARGE and not compact.accepted
        assert record["reason"] == "payload_too_large" and "event" not in record
        assert record["detail"].startswith("output record of ") and record["key_id"] == "k"
        audit = orjson.loads(outputs.audit(REQ, compact, ts="t", duration_us=1, lag_ms=None,
                                           worker="w"))
        assert (audit["decision"], audit["reason"]) == ("rejected", "payload_too_large")


def test_audit_bounds_the_event_type() -> None:
    d = Decision("r1", Reason.OK, event_type="t" * 100_000)
    audit = orjson.loads(outputs.audit(REQ, d, ts="t", duration_us=1, lag_ms=None, worker="w"))
    assert len(audit["event_type"]) == outputs.MAX_EVENT_TYPE


def test_an_event_too_deep_to_write_becomes_a_compact_rejection() -> None:
    # orjson reads 300 levels (its limit is 1024) but cannot write them back.
    d = Decision("r1", Reason.OK, key_id="k", method=Method.SERVER_SECRET,
                 event=orjson.loads(b'{"a":' * 300 + b"1" + b"}" * 300), event_type="page")
    compact, value = outputs.bounded(REQ, d, 10_000)
    record = orjson.loads(value)
    assert compact.reason is Reason.MALFORMED_EVENT and "event" not in record
    assert record["detail"] == "event nested deeper than 254 levels"
