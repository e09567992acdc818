"""Histograms kept as plain numbers (workers/metrics/tally.py)."""

from workers.metrics.tally import Buckets


def test_a_value_on_a_bound_counts_in_that_bucket_and_the_rest_above() -> None:
    b = Buckets([0.00001, 0.0001], per_unit=1e6)  # bounds in s, observations in µs
    for us in (5, 10, 11, 100, 1000):
        b.observe(us)
    assert b.cumulative() == [("1e-05", 2), ("0.0001", 4), ("+Inf", 5)]
    assert b.count == 5
    assert abs(b.sum - 0.001126) < 1e-12


def test_bounds_are_sorted_and_an_empty_histogram_is_all_zero() -> None:
    b = Buckets([1024, 64])
    assert b.cumulative() == [("64.0", 0), ("1024.0", 0), ("+Inf", 0)]
    assert b.sum == 0 and b.count == 0
