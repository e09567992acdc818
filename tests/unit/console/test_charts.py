from workers.console import charts


def test_sparkline_scales_to_the_peak_and_a_quiet_hour_is_flat() -> None:
    spark = charts.sparkline([[0, 0], [4, 2], [2, 0]], width=20, height=12)
    assert spark.peak == 4
    assert spark.accepted.split() == ["0.0,11.0", "10.0,1.0", "20.0,6.0"]
    assert spark.rejected.split()[1] == "10.0,6.0"
    quiet = charts.sparkline([[0, 0]] * 60)
    assert len(set(quiet.rejected.split()[i].split(",")[1] for i in range(60))) == 1


def test_per_minute_stacks_reasons_with_ok_at_the_bottom() -> None:
    starts = ["2026-12-05T14:00:00Z", "2026-12-05T14:01:00Z"]
    chart = charts.per_minute([{"minute": starts[1], "counts": {"unknown_key": 1, "ok": 3}}],
                              starts, width=100, height=44)
    assert chart.peak == 4
    ok, unknown = chart.bars
    assert (ok.colour, ok.height, ok.y) == (charts.ACCEPTED, 30.0, 14.0)
    assert unknown.y + unknown.height == ok.y and unknown.title == "14:01 unknown_key: 1"
    assert chart.legend == (("ok", charts.ACCEPTED, 3), ("unknown_key", charts.PALETTE[0], 1))
    assert (chart.first, chart.last) == ("14:00", "14:01")


def test_no_usage_draws_no_bars() -> None:
    assert charts.per_minute([], ["2026-12-05T14:00:00Z"]).bars == ()
