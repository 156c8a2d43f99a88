"""bench.trainer_variant: a variant trained on the quick run's Transform output, scored on its test
split, and exported as the Trainer exports so that bench.robustness can read it."""

from __future__ import annotations

import glob
import json
import os

import pytest

from bench import robustness
from tests.conftest import run_module

pytestmark = pytest.mark.slow


def run_variant(*args: str, timeout: float):
    return run_module("bench.trainer_variant", *args, timeout=timeout)


def test_a_variant_trains_scores_and_exports_a_model_the_robustness_bench_reads(
    captcha_quick_run, tmp_path, monkeypatch, capsys
):
    (transform,) = glob.glob(os.path.join(captcha_quick_run["out"], "captcha", "Transform", "*"))
    exported = str(tmp_path / "variant")
    params = [
        "epochs=1",
        "conv_filters=4,8",
        "dense_units=8",
        "rnn_units=4",
        "augment_shear=0.2",
        "augment_stretch=0.1",
    ]
    command = ["--transform-dir", transform, "--export", exported]
    result = run_variant(*command, *[arg for p in params for arg in ("--param", p)], timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    scores = json.loads(result.stdout.strip().splitlines()[-1])
    assert scores["params"]["augment_shear"] == "0.2"
    assert 0 <= scores["test_views"]["full_string_accuracy"] <= 1
    assert scores["test_views"]["shifts"] == [0, -1, 1, -3, 3]
    monkeypatch.chdir(tmp_path)  # robustness.json lands here
    assert robustness.main(["--model", exported, "--per-set", "4", "--sets", "varied"]) == 0
    assert "| varied | 4 |" in capsys.readouterr().out
    again = run_variant(*command, "--param", "epochs=1", timeout=120)
    assert again.returncode == 2 and "already exists" in again.stderr  # nothing trained over it
