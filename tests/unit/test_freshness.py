"""Produce-to-queryable latency percentiles, weighted by events (streams/worker/app.py Freshness)."""

from __future__ import annotations

import statistics

from hypothesis import given
from hypothesis import strategies as st

from streams.worker.progress import Freshness


def test_percentiles_are_weighted_by_events() -> None:
    freshness = Freshness()
    freshness.add(0.1, 98)  # 98 events stored after 100 ms
    freshness.add(3.0, 2)  # 2 events after 3 s
    assert freshness.percentile(0.5) == 0.1
    assert freshness.percentile(0.98) == 0.1
    assert freshness.percentile(0.99) == 3.0
    assert freshness.summary() == {"freshness_p50_ms": 100.0, "freshness_p99_ms": 3000.0, "freshness_events": 100}


def test_empty_window_has_no_percentile_and_old_samples_leave_it() -> None:
    freshness = Freshness(window=2)
    assert freshness.percentile(0.99) is None
    for seconds in (9.0, 0.2, 0.3):
        freshness.add(seconds, 1)
    assert freshness.percentile(1.0) == 0.3  # the 9 s sample fell out of the window


@given(st.lists(st.floats(min_value=0, max_value=100, allow_nan=False), min_size=1, max_size=200))
def test_unit_weights_match_the_nearest_rank_percentile(values: list[float]) -> None:
    freshness = Freshness()
    for v in values:
        freshness.add(v, 1)
    ordered = sorted(values)
    assert freshness.percentile(0.5) == ordered[max(0, -(-len(ordered) // 2) - 1)]  # nearest rank
    assert statistics.median_low(values) <= freshness.percentile(0.5) <= statistics.median_high(values)
