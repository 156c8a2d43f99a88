"""bench.reliability_bench's soak figures: the p99 trend line, which one slow minute does not tilt."""

from __future__ import annotations

import numpy as np

from bench.reliability_bench import trend_drift_percent


def test_the_trend_follows_a_climb_and_ignores_one_slow_minute():
    rng = np.random.RandomState(5)
    flat = list(12 + rng.rand(600))
    assert abs(trend_drift_percent(flat)) < 3
    slow_last_minute = flat[:540] + [v * 1.6 for v in flat[540:]]  # +60% first-vs-last minute
    assert abs(trend_drift_percent(slow_last_minute)) < 5
    climbing = [v * (1 + 0.3 * t / 600) for t, v in enumerate(flat)]  # +30% over the ten minutes
    assert 25 < trend_drift_percent(climbing) < 35
    assert trend_drift_percent([None] * 5 + [None, 12.0] * 300) is not None  # seconds without an answer skipped
    assert trend_drift_percent([12.0] * 8) is None  # too short to draw a line through
