"""The MNIST pipeline end to end (quick, on rendered digits): every component, the push next to
other models, and one clear line for bad data."""

from __future__ import annotations

import functools
import glob
import json
import os
import shutil

import numpy as np
import pytest
import tensorflow as tf

from components.example_gen.idx_source import write_idx
from tests.conftest import imported_modules, pipelines_cli, without_import_times
from tests.pipelines.mnist_data import digits, write_mnist

cli = functools.partial(pipelines_cli, timeout=600)  # the bound these tests had before the shared helper


def test_quick_run_validates_trains_evaluates_and_pushes(mnist_quick_run):
    out = mnist_quick_run["result"].stdout
    for line in ("IdxExampleGen", "Transform", "Trainer", "Evaluator", "InfraValidator", "Pusher"):
        assert line in mnist_quick_run["result"].stderr + out
    assert "anomalies:   0" in out and "pushed:      version 1" in out
    version = os.path.join(mnist_quick_run["serving"], "mnist", "1")
    signatures = tf.saved_model.load(version).signatures
    assert {"serving_default", "predict_images", "classify"} <= set(signatures)
    with open(os.path.join(mnist_quick_run["serving"], "models.config")) as f:
        assert 'name: "mnist"' in f.read()


def test_the_evaluation_reports_accuracy_per_digit_and_a_confusion_matrix(mnist_quick_run):
    [path] = glob.glob(os.path.join(mnist_quick_run["out"], "mnist", "Evaluator", "*", "evaluation", "metrics.json"))
    with open(path) as f:
        metrics = json.load(f)["candidate"]
    matrix = np.array(metrics["confusion_matrix"])
    assert matrix.shape == (10, 10) and matrix.sum() == metrics["overall"]["num_examples"]
    assert np.trace(matrix) / matrix.sum() == pytest.approx(metrics["overall"]["accuracy"])
    assert set(metrics["slices"]["true_digit"]) <= set("0123456789")
    assert len(metrics["misread"]) == min(50, matrix.sum() - np.trace(matrix))


def test_a_second_model_pushes_beside_mnist(mnist_quick_run, tmp_path, shared_data):
    serving = str(tmp_path / "serving")
    shutil.copytree(mnist_quick_run["serving"], serving)
    result = cli(
        "run",
        "house_price",
        "--data",
        os.path.join(shared_data, "house_price", "data1.csv"),
        "--output-dir",
        str(tmp_path / "runs"),
        "--serving-dir",
        serving,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    with open(os.path.join(serving, "models.config")) as f:
        config = f.read()
    assert 'name: "mnist"' in config and 'name: "house_price"' in config
    assert sorted(os.listdir(os.path.join(serving, "mnist"))) == ["1"]


@pytest.mark.parametrize(
    "break_it,message",
    [
        (
            lambda d: open(os.path.join(d, "t10k-images-idx3-ubyte.gz"), "wb").write(b"\x1f\x8bnot gzip"),
            "not a readable gzip",
        ),
        (
            lambda d: write_idx(np.zeros([3], np.uint8), os.path.join(d, "t10k-labels-idx1-ubyte.gz")),
            "holds 20 images but",
        ),
        (lambda d: os.remove(os.path.join(d, "t10k-labels-idx1-ubyte.gz")), "is missing"),
        (
            lambda d: open(os.path.join(d, "t10k-labels-idx1-ubyte.gz"), "wb").write(b"\0\0\x08\x01\0\0\0\x09\x01"),
            "truncated",
        ),
    ],
)
def test_bad_idx_files_are_one_line_and_exit_2(tmp_path, break_it, message):
    data = write_mnist(str(tmp_path / "data"), test_count=20)
    break_it(data)
    env = {**os.environ, "PYTHONPROFILEIMPORTTIME": "1"}
    result = cli("run", "mnist", "--quick", "--data", data, "--output-dir", str(tmp_path / "runs"), env=env)
    assert result.returncode == 2
    lines = without_import_times(result.stderr).strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr[-3000:]
    # Answered before TensorFlow is imported (7.5 s of a 2-core machine's CPU when it was).
    imported = imported_modules(result.stderr)
    assert "components.example_gen.idx_source" in imported and "tensorflow" not in imported


def test_a_missing_data_folder_says_where_the_files_go(tmp_path):
    result = cli(
        "run", "mnist", "--data", str(tmp_path / "nowhere"), "--output-dir", str(tmp_path / "runs"), timeout=300
    )
    assert result.returncode == 2 and "no such file or folder" in result.stderr


def test_a_folder_of_digit_images_is_read_by_image_example_gen(tmp_path):
    from PIL import Image

    images, labels = digits(12, seed=3)
    folder = tmp_path / "pngs"
    folder.mkdir()
    for i, (image, label) in enumerate(zip(images, labels)):
        Image.fromarray(255 - image).save(folder / f"{label}_{i}.png")  # dark on light, as scanned
    from pipelines.mnist import example_gen_for

    component = example_gen_for(str(folder), "train:8,eval:1,test:1")
    assert type(component).__name__ == "ImageExampleGen"
    from tests.components.helpers import read_examples, run_components

    result = run_components(tmp_path, [component])
    [artifact] = result.outputs("ImageExampleGen", "examples")
    found = sum(len(read_examples(artifact, s)) for s in ("train", "eval", "test"))
    assert found == 12


def test_model_parameter_is_checked_and_softmax_has_its_own_defaults(tmp_path):
    from pipelines.mnist import create_pipeline
    from pipelines.registry import RunOptions

    data = write_mnist(str(tmp_path / "data"), test_count=10)
    with pytest.raises(ValueError, match="model must be one of"):
        create_pipeline(RunOptions(params={"model": "resnet"}, data=data))

    def parameters(params):
        pipeline = create_pipeline(RunOptions(params=params, data=data))
        by_type = {type(c).__name__: c.parameters for c in pipeline.components}
        return json.loads(by_type["Trainer"]["train_config"]), by_type

    cnn, components = parameters({})
    assert cnn["model"] == "cnn" and cnn["augment"] is True
    assert json.loads(components["Evaluator"]["thresholds"]) == {"accuracy": {"min": 0.98}}
    assert components["Pusher"]["model_name"] == "mnist"
    softmax, components = parameters({"model": "softmax"})
    assert softmax["augment"] is False and softmax["learning_rate"] == 5e-3
    assert json.loads(components["Evaluator"]["thresholds"]) == {"accuracy": {"min": 0.90}}
    assert components["Pusher"]["model_name"] == "mnist_softmax"  # published beside the CNN
    assert parameters({"model": "softmax", "augment": "true"})[0]["augment"] is True  # a --param wins


def test_compare_overlays_softmax_and_cnn(mnist_quick_run, tmp_path):
    out = str(tmp_path / "runs")
    result = cli(
        "compare",
        "mnist",
        "--param",
        "model=softmax,cnn",
        "--quick",
        "--data",
        mnist_quick_run["data"],
        "--output-dir",
        out,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    [report] = glob.glob(os.path.join(out, "mnist", "compare", "model-*", "comparison.json"))
    with open(report) as f:
        compared = json.load(f)
    assert compared["metric"] == "accuracy" and [r["model"] for r in compared["rows"]] == ["softmax", "cnn"]
    assert all(len(h["val_accuracy"]) == 2 for h in compared["histories"].values())  # --quick: two epochs each
    assert os.path.getsize(os.path.join(os.path.dirname(report), "comparison.png")) > 10_000


def test_an_image_too_large_for_the_graph_fails_the_transform_in_one_line_with_the_reason(tmp_path):
    """An image of digits whose one file is 5000x5000 (over the graphs' 20-megapixel limit): the run
    said only "Fetching the values for the following Tensor keys: {'image', 'label'}", tf.Transform's
    last line, and then TensorFlow's "Exception ignored in: <function AtomicFunction.__del__>"
    traceback at exit."""
    from PIL import Image

    images, labels = digits(400, seed=5)
    folder = tmp_path / "pngs"
    for i, (image, label) in enumerate(zip(images, labels)):
        (folder / str(label)).mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(folder / str(label) / f"{i}.png")
    Image.new("L", (5000, 5000)).save(folder / str(labels[0]) / "0.png")  # a few kB of PNG
    result = cli("run", "mnist", "--quick", "--data", str(folder), "--output-dir", str(tmp_path / "runs"), timeout=300)
    assert result.returncode == 1, result.stderr[-3000:]
    [error] = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert error.startswith("error: Transform failed"), result.stderr[-3000:]
    assert "image too large" in error and "[while running 'Transform[" in error
    assert "Fetching the values" not in error
    assert "Exception ignored" not in result.stderr and "Traceback" not in result.stderr, result.stderr[-3000:]
