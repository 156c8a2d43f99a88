"""bench.model_throughput: variants parsed strictly, each timed in a child of its own, ratios
against the first variant."""

import argparse
import json

import pytest

from bench import model_throughput


def test_a_variant_is_a_name_and_a_json_object():
    assert model_throughput.parse_variant('narrow={"conv_filters": "8,24,96"}') == (
        "narrow",
        {"conv_filters": "8,24,96"},
    )
    for bad in ("narrow", '={"a": 1}', "narrow={not json", "narrow=[1, 2]"):
        with pytest.raises(argparse.ArgumentTypeError):
            model_throughput.parse_variant(bad)


def test_each_variant_is_timed_and_compared_with_the_first(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr("bench.common.OUT_DIR", str(tmp_path))  # where record() writes, as the other bench tests do
    code = model_throughput.main(
        [
            "--rounds",
            "1",
            "--steps",
            "2",
            "--shape",
            "24,64,1",
            "--variant",
            'small={"conv_filters": "4,8", "rnn_units": 4, "dense_units": 8, "batch_size": 8}',
            "--variant",
            'dense={"conv_filters": "4,8", "heads": "dense", "dense_units": 8, "batch_size": 8}',
        ]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert "round 1/1: small" in out and "round 1/1: dense" in out
    rows = json.loads((tmp_path / "model_throughput.json").read_text())
    by_name = {row["variant"]: row for row in rows}
    assert by_name["small"]["vs small"] == pytest.approx(1.0)
    assert by_name["dense"]["images/s (median)"] > 0
    assert by_name["dense"]["parameters"] != by_name["small"]["parameters"]


def test_a_failing_variant_says_which_and_why():
    with pytest.raises(RuntimeError, match="no_such_field"):
        model_throughput.measure({"no_such_field": 1}, 1, [24, 64, 1])
