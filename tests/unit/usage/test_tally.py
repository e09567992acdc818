"""Folding audit records into usage deltas: buckets, minutes, last times, bad input."""

from __future__ import annotations

from typing import Any

import orjson

from workers.usage.tally import (
    UNKNOWN,
    Tally,
    add_counts,
    bucket,
    later_times,
    minute_epoch,
    minute_of,
    parse_delta,
)

KNOWN = {"shop", "app"}.__contains__
TS_MS = 1_795_777_234_567  # 2026-11-27T11:00:34.567Z


def audit(key_id: object, reason: str, ts: str, decision: str | None = None) -> bytes:
    return orjson.dumps({"request_id": "r", "ts": ts, "key_id": key_id, "reason": reason,
                         "decision": decision or ("accepted" if reason == "ok" else "rejected")})


def deltas(tally: Tally) -> dict[tuple[str, str], dict[str, Any]]:
    out = {}
    for key, value in tally.deltas():
        delta = orjson.loads(value)
        out[(orjson.loads(key), delta["minute"])] = delta
    return out


def test_bucket_is_the_key_id_only_when_the_key_table_holds_it() -> None:
    assert bucket("shop", KNOWN) == "shop"
    assert bucket("garbage-" + "x" * 500, KNOWN) == UNKNOWN
    assert bucket(None, KNOWN) == UNKNOWN
    assert bucket(42, KNOWN) == UNKNOWN
    assert bucket(["shop"], KNOWN) == UNKNOWN
    assert bucket(UNKNOWN, lambda _: True) == UNKNOWN


def test_minute_is_the_prefix_of_ts_else_the_record_timestamp() -> None:
    assert minute_of("2026-11-27T11:02:59.999Z", TS_MS) == "2026-11-27T11:02"
    for bad in (None, 17, "", "yesterday", "2026-11-27 11:02:59", "x" * 40):
        assert minute_of(bad, TS_MS) == "2026-11-27T11:00"
    assert minute_epoch("2026-11-27T11:00") == 1_795_777_200.0


def test_a_batch_folds_into_one_delta_per_key_and_minute() -> None:
    t = Tally(KNOWN)
    t.add(audit("shop", "ok", "2026-11-27T11:00:01.000Z"), TS_MS)
    t.add(audit("shop", "ok", "2026-11-27T11:00:09.000Z"), TS_MS)
    t.add(audit("shop", "origin_not_allowed", "2026-11-27T11:00:05.000Z"), TS_MS)
    t.add(audit("shop", "ok", "2026-11-27T11:01:00.500Z"), TS_MS)
    t.add(audit(None, "unknown_key", "2026-11-27T11:00:02.000Z"), TS_MS)
    t.add(audit("nope", "unknown_key", "2026-11-27T11:00:03.000Z"), TS_MS)
    got = deltas(t)
    assert set(got) == {("shop", "2026-11-27T11:00"), ("shop", "2026-11-27T11:01"),
                        (UNKNOWN, "2026-11-27T11:00")}
    assert got[("shop", "2026-11-27T11:00")]["counts"] == {"ok": 2, "origin_not_allowed": 1}
    assert got[("shop", "2026-11-27T11:01")]["counts"] == {"ok": 1}
    assert got[(UNKNOWN, "2026-11-27T11:00")]["counts"] == {"unknown_key": 2}
    # The last times ride on the key's latest minute only.
    assert "last_accepted" not in got[("shop", "2026-11-27T11:00")]
    last = got[("shop", "2026-11-27T11:01")]
    assert last["last_accepted"] == "2026-11-27T11:01:00.500Z"
    assert last["last_rejected"] == "2026-11-27T11:00:05.000Z"
    assert got[(UNKNOWN, "2026-11-27T11:00")]["last_accepted"] is None
    assert sum(n for d in got.values() for n in dict(d["counts"]).values()) == 6


def test_garbage_on_audit_log_is_counted_under_unknown_never_as_a_key() -> None:
    t = Tally(KNOWN)
    for value in (b"", b"not json", b"[1,2]", b"null", orjson.dumps({"key_id": {"a": 1}}),
                  orjson.dumps({"key_id": "shop", "reason": "r" * 1000, "ts": 5})):
        t.add(value, TS_MS)
    got = deltas(t)
    assert {k for k, _ in got} == {UNKNOWN, "shop"}
    assert got[(UNKNOWN, "2026-11-27T11:00")]["counts"] == {"other": 5}
    assert got[("shop", "2026-11-27T11:00")]["counts"] == {"other": 1}


def test_parse_delta_takes_only_what_tally_writes() -> None:
    good = orjson.dumps({"minute": "2026-11-27T11:00", "counts": {"ok": 2}})
    delta = parse_delta(good)
    assert delta is not None and delta["start"] == 1_795_777_200.0
    for bad in (b"", b"{}", b"[]", orjson.dumps({"minute": "2026-11-27T11:00", "counts": []}),
                orjson.dumps({"minute": "2026-13-27T11:00", "counts": {"ok": 1}}),
                orjson.dumps({"minute": "2026-11-27T11:00", "counts": {"ok": -1}}),
                orjson.dumps({"minute": "2026-11-27T11:00", "counts": {"ok": True}}),
                orjson.dumps({"minute": 5, "counts": {"ok": 1}}),
                # Counts no worker writes in a minute, reasons that are not ours.
                orjson.dumps({"minute": "2026-11-27T11:00", "counts": {"ok": 2**64 - 1}}),
                orjson.dumps({"minute": "2026-11-27T11:00", "counts": {"x" * 65: 1}}),
                orjson.dumps({"minute": "2026-11-27T11:00",
                              "counts": {f"r{n}": 1 for n in range(65)}})):
        assert parse_delta(bad) is None, bad


def test_a_total_stops_at_2_to_the_53_so_the_changelog_can_always_write_it() -> None:
    total = add_counts({"ok": 2**53 - 5}, {"ok": 10**9})
    assert total == {"ok": 2**53}
    assert orjson.loads(orjson.dumps(add_counts(total, {"ok": 10**9}))) == {"ok": 2**53}


def test_merging_counts_and_last_times() -> None:
    assert add_counts(None, {"ok": 2}) == {"ok": 2}
    assert add_counts({"ok": 1, "unknown_key": 3}, {"ok": 2}) == {"ok": 3, "unknown_key": 3}
    first = later_times(None, {"last_accepted": "2026-11-27T11:00:01.000Z"})
    assert first == {"last_accepted": "2026-11-27T11:00:01.000Z", "last_rejected": None}
    assert later_times(first, {"last_accepted": "2026-11-27T10:00:00.000Z"}) is None
    assert later_times(first, {}) is None
    newer = later_times(first, {"last_rejected": "2026-11-27T11:05:00.000Z"})
    assert newer == {"last_accepted": "2026-11-27T11:00:01.000Z",
                     "last_rejected": "2026-11-27T11:05:00.000Z"}


def test_the_last_rejections_ride_on_the_delta_and_merge_newest_first() -> None:
    """Issue 20: a key's page shows its last 20 rejections, kept by the usage side."""
    from workers.usage.tally import MAX_FIELD, REJECTIONS

    tally = Tally(KNOWN)
    for n in range(30):
        tally.add(orjson.dumps({
            "request_id": f"r{n}", "ts": f"2026-11-27T11:00:{n:02d}.000Z", "key_id": "shop",
            "reason": "origin_not_allowed", "decision": "rejected", "detail": "x" * 500,
            "origin": "https://evil.test", "event_type": "page", "token": "never-kept"}),
            TS_MS)
    tally.add(audit("shop", "ok", "2026-11-27T11:00:40.000Z"), TS_MS)
    delta = deltas(tally)[("shop", "2026-11-27T11:00")]
    kept = delta["rejections"]
    assert len(kept) == REJECTIONS and kept[0]["request_id"] == "r29"
    assert set(kept[0]) == {"ts", "reason", "detail", "origin", "event_type", "request_id"}
    assert len(kept[0]["detail"]) == MAX_FIELD
    merged = later_times({"last_accepted": None, "last_rejected": None,
                          "rejections": [{"ts": "2026-11-27T12:00:00.000Z", "request_id": "new"},
                                         "garbage", {"no": "ts"}]}, delta)
    assert merged is not None
    assert [r["request_id"] for r in merged["rejections"][:2]] == ["new", "r29"]
    assert len(merged["rejections"]) == REJECTIONS
    assert later_times(merged, delta) is None  # the same delta again changes nothing
