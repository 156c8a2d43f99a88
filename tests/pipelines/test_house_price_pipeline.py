"""The house-price pipeline on the book's data1.csv: the linear model reaches the least-squares optimum."""

from __future__ import annotations

import glob
import json
import os

import numpy as np
import pytest
import tensorflow as tf

from components.base.artifacts import Examples
from tests.conftest import SHARED_DATA, pipelines_cli

cli = pipelines_cli


@pytest.fixture(scope="module")
def house_run(tmp_path_factory):
    data = os.path.abspath(os.path.join(SHARED_DATA, "house_price", "data1.csv"))
    if not os.path.exists(data):
        pytest.skip(f"the book's house-price data is not at {data}")
    root = tmp_path_factory.mktemp("house")
    out, serving = str(root / "runs"), str(root / "serving")
    result = cli("run", "house_price", "--data", data, "--output-dir", out, "--serving-dir", serving)
    assert result.returncode == 0, result.stderr[-4000:]
    return {"out": out, "serving": serving, "result": result, "data": data}


def train_split(out):
    [examples_dir] = glob.glob(os.path.join(out, "house_price", "CsvExampleGen", "*", "examples"))
    files = glob.glob(Examples(uri=examples_dir).split_files("train"))
    rows = []
    for record in tf.data.TFRecordDataset(files, compression_type="GZIP"):
        example = tf.train.Example.FromString(record.numpy())
        f = example.features.feature
        rows.append((f["area"].float_list.value[0], f["bedrooms"].int64_list.value[0], f["price"].float_list.value[0]))
    return np.array(rows, dtype=np.float64)


def test_linear_model_rmse_is_within_1_percent_of_least_squares(house_run):
    rows = train_split(house_run["out"])
    assert len(rows) > 20
    design = np.column_stack([rows[:, 0], rows[:, 1], np.ones(len(rows))])
    coef, *_ = np.linalg.lstsq(design, rows[:, 2], rcond=None)
    optimum = np.sqrt(np.mean((design @ coef - rows[:, 2]) ** 2))
    model = tf.saved_model.load(os.path.join(house_run["serving"], "house_price", "1"))
    predicted = model.signatures["serving_default"](
        area=tf.constant(rows[:, 0], tf.float32), bedrooms=tf.constant(rows[:, 1].astype(np.int64))
    )["price"].numpy()
    rmse = np.sqrt(np.mean((predicted - rows[:, 2]) ** 2))
    assert rmse <= optimum * 1.01, (rmse, optimum)


def test_regress_signature_takes_raw_tf_examples(house_run):
    model = tf.saved_model.load(os.path.join(house_run["serving"], "house_price", "1"))
    example = tf.train.Example()
    example.features.feature["area"].float_list.value.append(2104.0)
    example.features.feature["bedrooms"].int64_list.value.append(3)
    regressed = model.signatures["regress"](inputs=tf.constant([example.SerializeToString()]))["outputs"].numpy()
    direct = model.signatures["serving_default"](area=tf.constant([2104.0]), bedrooms=tf.constant([3], tf.int64))[
        "price"
    ].numpy()
    assert regressed.shape == (1, 1)
    assert regressed[0, 0] == pytest.approx(direct[0], rel=1e-5)
    assert 200_000 < direct[0] < 600_000  # a house of 2104 sq ft with 3 bedrooms, in the book's price range


def test_summary_reports_rmse_against_the_naive_baseline(house_run):
    stdout = house_run["result"].stdout
    assert "baseline_rmse" in stdout and "rmse" in stdout
    assert "pushed:      version 1" in stdout


def test_the_evaluator_draws_the_residuals_against_the_price(house_run):
    [evaluation] = glob.glob(os.path.join(house_run["out"], "house_price", "Evaluator", "*", "evaluation"))
    with open(os.path.join(evaluation, "metrics.json")) as f:
        residuals = json.load(f)["candidate"]["residuals"]
    assert len(residuals["truth"]) == len(residuals["predicted"]) > 0
    with open(os.path.join(evaluation, "residuals.png"), "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_compare_overlays_variants_of_a_parameter(house_run):
    result = cli(
        "compare",
        "house_price",
        "--data",
        house_run["data"],
        "--param",
        "optimizer=adam,sgd",
        "--set",
        "epochs=30",
        "--output-dir",
        house_run["out"],
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "| optimizer |" in result.stdout and "| adam |" in result.stdout and "| sgd |" in result.stdout
    [plot] = glob.glob(os.path.join(house_run["out"], "house_price", "compare", "optimizer-*", "comparison.png"))
    assert os.path.getsize(plot) > 1000
    assert "CsvExampleGen: cache hit" in result.stderr


def test_a_bad_training_parameter_is_a_one_line_usage_error(house_run):
    result = cli("run", "house_price", "--data", house_run["data"], "--param", "optimizer=adamw")
    assert result.returncode == 2
    assert "optimizer must be one of" in result.stderr and "Traceback" not in result.stderr
