"""The Evaluator's decision: thresholds, and no regression against the published model."""

from __future__ import annotations

import os

from components.evaluator.blessing import check_thresholds, compare_to_baseline, latest_version_dir


def test_thresholds_min_max_and_relative_to_another_metric():
    metrics = {"full_string_accuracy": 0.93, "rmse": 10.0, "baseline_rmse": 9.0}
    failures = check_thresholds(
        metrics,
        {"full_string_accuracy": {"min": 0.95}, "rmse": {"max_metric": "baseline_rmse"}, "missing": {"min": 0}},
    )
    assert any("full_string_accuracy 0.9300 < required 0.95" in f for f in failures)
    assert any("rmse 10.0000 > baseline_rmse 9.0000" in f for f in failures)
    assert any("missing was not computed" in f for f in failures)
    assert check_thresholds({"full_string_accuracy": 0.99}, {"full_string_accuracy": {"min": 0.95}}) == []


def test_comparison_with_the_published_model_uses_a_relative_tolerance():
    assert compare_to_baseline(0.990, 0.992, "acc", True, 0.005) is None
    assert "worse than the published model" in compare_to_baseline(0.980, 0.992, "acc", True, 0.005)
    assert compare_to_baseline(101.0, 100.0, "rmse", False, 0.01) is None
    assert compare_to_baseline(102.0, 100.0, "rmse", False, 0.01) is not None


def test_latest_version_dir_ignores_incomplete_and_non_integer_directories(tmp_path):
    base = tmp_path / "captcha"
    for name, complete in [("1", True), ("3", True), ("7", False), (".staging-8", True), ("notes", True)]:
        (base / name).mkdir(parents=True)
        if complete:
            (base / name / "saved_model.pb").write_bytes(b"x")
    assert latest_version_dir(str(base)) == os.path.join(str(base), "3")
    assert latest_version_dir(str(tmp_path / "absent")) is None
