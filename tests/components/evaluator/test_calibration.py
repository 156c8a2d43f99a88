"""Calibration: the fitted temperature undoes a known over-confidence, the rejection threshold keeps
its promise on held-out answers, and the expected calibration error tells calibrated from not."""

from __future__ import annotations

import numpy as np
import pytest

from components.evaluator import calibration


def _softmax(z):
    z = z - z.max(-1, keepdims=True)
    return np.exp(z) / np.exp(z).sum(-1, keepdims=True)


def _labelled(rng, n=4000, length=4, classes=10, sharpness=2.0):
    """Logits whose softmax is the true chance of each class; labels drawn from it."""
    logits = rng.normal(0, sharpness, size=(n, length, classes))
    truth = _softmax(logits)
    cumulative = truth.cumsum(-1)
    labels = (rng.random((n, length, 1)) > cumulative).sum(-1).clip(0, classes - 1)
    return logits, labels


@pytest.mark.parametrize("overconfidence", [0.5, 1.0, 2.5])
def test_fit_temperature_recovers_a_known_distortion(overconfidence):
    rng = np.random.default_rng(0)
    logits, labels = _labelled(rng)
    reported = _softmax(logits * overconfidence)  # a model overconfident (>1) or timid (<1) by this factor
    temperature = calibration.fit_temperature(reported, labels)
    assert temperature == pytest.approx(overconfidence, rel=0.1)
    calibrated = calibration.apply_temperature(reported, temperature)
    assert (calibrated.argmax(-1) == reported.argmax(-1)).all()  # no answer changes
    assert calibration.negative_log_likelihood(reported, labels, temperature) <= calibration.negative_log_likelihood(
        reported, labels, 1.0
    )


def test_fit_temperature_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="do not match"):
        calibration.fit_temperature(np.full((3, 4, 10), 0.1), np.zeros((3, 5), dtype=int))


def test_expected_calibration_error_tells_calibrated_from_overconfident():
    rng = np.random.default_rng(1)
    confidence = rng.uniform(0.3, 1.0, 20000)
    right = rng.random(20000) < confidence  # right exactly as often as claimed
    assert calibration.reliability(confidence, right)["ece"] < 0.02
    overconfident = np.minimum(confidence + 0.2, 1.0)
    report = calibration.reliability(overconfident, right)
    assert report["ece"] > 0.1
    assert sum(b["count"] for b in report["bins"]) == 20000
    with pytest.raises(ValueError):
        calibration.reliability(np.array([]), np.array([]))


def test_reject_threshold_keeps_its_precision_on_fresh_answers():
    rng = np.random.default_rng(2)
    confidence = rng.uniform(0.0, 1.0, 20000)
    right = rng.random(20000) < confidence
    threshold = calibration.reject_threshold(confidence, right, target=0.95)
    accepted = confidence >= threshold
    assert right[accepted].mean() >= 0.95 and 0.05 < accepted.mean() < 0.2  # about the top tenth
    # On answers it was not chosen on, the promise holds within sampling error.
    fresh = rng.uniform(0.0, 1.0, 20000)
    fresh_right = rng.random(20000) < fresh
    assert fresh_right[fresh >= threshold].mean() > 0.94


def test_reject_threshold_never_splits_ties_and_can_refuse_everything():
    confidence = np.array([0.9] * 30 + [0.5] * 30)
    right = np.array([True] * 30 + [True] * 29 + [False])
    measured = {"level": 0.5}  # the precision as measured, no allowance for sampling
    assert calibration.reject_threshold(confidence, right, target=0.99, **measured) == 0.9
    none_right = np.zeros(60, dtype=bool)
    assert calibration.reject_threshold(confidence, none_right, target=0.99, **measured) == calibration.NEVER
    assert calibration.reject_threshold(confidence, right, target=0.9, **measured) == 0.5
    # With 95% confidence, 30 of 30 right is not enough to promise 99% (the bound is 0.917), 59 of 60 is 0.929.
    assert calibration.reject_threshold(confidence, right, target=0.99) == calibration.NEVER
    assert calibration.reject_threshold(confidence, right, target=0.9) == 0.5
    with pytest.raises(ValueError):
        calibration.reject_threshold(confidence, right, target=0.0)
    with pytest.raises(ValueError, match="level"):
        calibration.reject_threshold(confidence, right, level=1.0)


def test_precision_lower_bound_is_wilsons():
    """Against the Wilson bound found another way: bisection for the p below the measured one where (measured - p)^2 = z^2 p (1 - p) / n."""
    assert calibration.precision_lower_bound(30, 30, 0.95) == pytest.approx(0.9172, abs=1e-4)
    assert calibration.precision_lower_bound(59, 60, 0.95) == pytest.approx(0.9287, abs=1e-4)
    assert calibration.precision_lower_bound(5730, 5760, 0.95) == pytest.approx(0.99298, abs=1e-5)
    assert calibration.precision_lower_bound(7, 10, 0.5) == pytest.approx(0.7)  # level 0.5: the measured precision
    bounds = calibration.precision_lower_bound(np.array([90, 900, 9000]), np.array([100, 1000, 10000]), 0.95)
    assert np.all(np.diff(bounds) > 0) and np.all(bounds < 0.9)  # tighter with more answers, never above


def test_the_threshold_keeps_its_promise_on_answers_it_was_not_chosen_on():
    """The accepted answers must be right 99.5% of the time on new data, not only on the eval split.
    Chosen where the measured precision just reaches the target, the threshold is the one sampling
    luck favoured: on fresh answers it fell short about half the time. With the bound, rarely."""
    rng = np.random.default_rng(5)

    def answers(n):  # confidences that are probabilities of being right, about 98% right in all
        confidence = 1 - rng.beta(0.25, 12, n)
        return confidence, rng.random(n) < confidence

    fresh_confidence, fresh_right = answers(200_000)
    short = {}
    for level in (0.5, 0.95):
        short[level] = 0
        for _ in range(100):
            threshold = calibration.reject_threshold(*answers(5000), target=0.995, level=level)
            short[level] += fresh_right[fresh_confidence >= threshold].mean() < 0.995
    assert short[0.5] >= 25  # the measured precision's promise: broken on about half of the eval splits
    assert short[0.95] <= 12  # the bound's: on a few


def test_reliability_diagram_is_a_png(tmp_path):
    rng = np.random.default_rng(3)
    confidence = rng.uniform(0, 1, 500)
    report = calibration.reliability(confidence, rng.random(500) < confidence)
    path = tmp_path / "reliability.png"
    calibration.plot_reliability(report, str(path), "test")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 5000
