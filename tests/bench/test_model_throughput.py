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


def test_a_variant_that_is_no_config_is_refused_before_any_is_timed(capsys):
    with pytest.raises(SystemExit) as exited:
        model_throughput.main(["--variant", "ok={}", "--variant", 'typo={"no_such_field": 1}'])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "variant 'typo'" in err and "no_such_field" in err
    assert "round 1" not in capsys.readouterr().out
    with pytest.raises(ValueError, match="conv_filters"):
        model_throughput.check_fields("bad", {"conv_filters": "8,-1"})


def test_a_failing_variant_says_which_and_why():
    # A config the model cannot be built from: 3 pixels high for its pooling stages.
    with pytest.raises(RuntimeError, match=r"(?s)variant \{\} failed.*Negative dimension size"):
        model_throughput.measure({}, 1, [3, 64, 1])
