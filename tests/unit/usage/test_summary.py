"""The usage summary: the last hour's minutes, totals, and the text forms."""

from __future__ import annotations

from workers.usage import summary
from workers.usage.client import path

NOW = 1_795_777_234.5  # 2026-11-27T11:00:34.5Z


def test_minute_starts_cover_the_last_hour_oldest_first() -> None:
    starts = summary.minute_starts(NOW)
    assert len(starts) == 60
    assert starts[-1] == 1_795_777_200.0
    assert starts[0] == 1_795_777_200.0 - 59 * 60
    assert starts == sorted(starts)


def test_summary_counts_only_the_last_hour() -> None:
    windows = {1_795_777_200.0: {"ok": 3, "origin_not_allowed": 1},
               1_795_777_200.0 - 600: {"ok": 2},
               1_795_777_200.0 - 3600: {"ok": 1000}}  # an hour ago: out
    last = {"last_accepted": "2026-11-27T11:00:30.000Z", "last_rejected": None}
    s = summary.summary("shop", last, windows.get, NOW)
    assert s["key_id"] == "shop"
    assert s["last_accepted"] == "2026-11-27T11:00:30.000Z" and s["last_rejected"] is None
    assert s["total"] == 6 and s["totals"] == {"ok": 5, "origin_not_allowed": 1}
    assert s["since"] == "2026-11-27T10:01:00Z" and s["window_s"] == 60
    assert [m["minute"] for m in s["minutes"]] == ["2026-11-27T10:50:00Z", "2026-11-27T11:00:00Z"]
    assert s["minutes"][1]["counts"] == {"ok": 3, "origin_not_allowed": 1}


def test_a_key_with_no_usage() -> None:
    s = summary.summary("idle", None, lambda _: None, NOW)
    assert s["total"] == 0 and s["minutes"] == [] and s["last_accepted"] is None


def test_text_forms() -> None:
    s = summary.summary("shop", {"last_accepted": "2026-11-27T11:00:30.000Z"},
                        {1_795_777_200.0: {"ok": 3}}.get, NOW)
    text = "\n".join(summary.lines(s))
    assert "last accepted  2026-11-27T11:00:30.000Z" in text
    assert "2026-11-27T11:00:00Z  ok=3" in text
    row = summary.row(s)
    assert row.startswith("shop ") and "last_hour=3 (ok=3)" in row
    over = summary.overview([s, summary.summary("app", None, lambda _: None, NOW)])
    assert [o["key_id"] for o in over] == ["app", "shop"] and "minutes" not in over[0]


def test_usage_path_quotes_the_key_id() -> None:
    assert path(None) == "/usage/"
    assert path("shop") == "/usage/shop/"
    assert path("a b/c") == "/usage/a%20b%2Fc/"
