"""One filesystem layer for artifacts: TensorFlow and Beam both reach a non-local URI through it."""

import ast
import io
import os
import uuid

import apache_beam as beam

from components.base import fileio
from components.base.beam import make_pipeline, run_pipeline
from pipelines.metadata import MetadataStore, sqlite_config
from pipelines.registry import PIPELINES, RunOptions
from pipelines.runner import LocalRunner
from tests.conftest import ROOT

# Files that touch local paths that are not artifacts: source code (fingerprints), the layer itself,
# the multi-worker launcher's spec and logs (local by construction), input image folders, a portable
# Beam submission's local scratch folder, /proc (the processes a SIGTERM is passed on to), MNIST's IDX
# reader (a local --data folder is checked with plain Python before TensorFlow loads; any other URI
# goes through the layer: tests/components/example_gen/test_idx_source.py reads one from ram://).
NOT_ARTIFACT_IO = {
    "components/base/beam.py",
    "components/base/fileio.py",
    "components/base/functions.py",
    "components/base/interrupt.py",
    "components/base/component.py",
    "components/trainer/multi_worker.py",
    "components/trainer/worker.py",
    "components/trainer/executor.py",
    "components/example_gen/image_source.py",
    "components/example_gen/idx_source.py",
    "components/infra_validator/probe.py",
}
FORBIDDEN = {
    ("os", "makedirs"),
    ("os", "rename"),
    ("os", "replace"),
    ("os", "remove"),
    ("os", "listdir"),
    ("os", "walk"),
    ("path", "exists"),
    ("path", "isdir"),
    ("path", "isfile"),
    ("shutil", None),
    ("glob", "glob"),
}


def _violations(path: str) -> list[str]:
    with open(path) as f:
        tree = ast.parse(f.read())
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Name) and func.id == "open":
            found.append(f"{path}:{node.lineno} open()")
        elif isinstance(func, ast.Attribute):
            owner = func.value.attr if isinstance(func.value, ast.Attribute) else getattr(func.value, "id", None)
            if (owner, func.attr) in FORBIDDEN or (owner, None) in FORBIDDEN:
                found.append(f"{path}:{node.lineno} {owner}.{func.attr}()")
    return found


def test_artifact_io_goes_through_the_layer():
    sources = [os.path.join("pipelines", "runner.py"), os.path.join("pipelines", "training.py")]
    for directory, _, files in os.walk(os.path.join(ROOT, "components")):
        sources += [os.path.relpath(os.path.join(directory, f), ROOT) for f in files if f.endswith(".py")]
    violations = [v for s in sorted(sources) if s not in NOT_ARTIFACT_IO for v in _violations(os.path.join(ROOT, s))]
    assert not violations, "\n".join(violations)


def test_beam_and_tensorflow_share_a_non_local_filesystem():
    root = f"ram://fileio-{uuid.uuid4().hex[:8]}"
    pipeline = make_pipeline([])
    _ = (
        pipeline
        | beam.Create(["a", "b"])
        | beam.io.WriteToText(fileio.join(root, "out", "part"), shard_name_template="")
    )
    run_pipeline(pipeline)
    assert sorted(fileio.read_text(fileio.join(root, "out", "part")).split()) == ["a", "b"]
    fileio.makedirs(fileio.join(root, "x"))
    fileio.write_text(fileio.join(root, "x", "f.txt"), "hi")
    with fileio.open(fileio.join(root, "x", "f.txt")) as f:
        assert f.read() == "hi"
    fileio.rename_no_replace(fileio.join(root, "x"), fileio.join(root, "y"))
    assert fileio.exists(fileio.join(root, "y", "f.txt")) and not fileio.exists(fileio.join(root, "x"))


def test_data_stages_with_every_artifact_on_a_non_local_filesystem(tmp_path):
    """The quick captcha data stages with the pipeline root on TensorFlow's in-memory filesystem."""
    root = f"ram://runs-{uuid.uuid4().hex[:8]}"
    pipeline = (
        PIPELINES["captcha"]
        .create(RunOptions(quick=True, serving_dir=str(tmp_path / "serving"), params={"num_examples": "120"}))
        .up_to("Transform")
    )
    store = MetadataStore(sqlite_config(str(tmp_path / "metadata.sqlite")))
    result = LocalRunner(store, root, out=io.StringIO()).run(pipeline)
    [examples] = result.outputs("CaptchaExampleGen", "examples")
    [transformed] = result.outputs("Transform", "transformed_examples")
    [statistics] = result.outputs("StatisticsGen", "statistics")
    for artifact in (examples, transformed, statistics):
        assert artifact.uri.startswith(root) and fileio.isdir(artifact.uri)
    assert examples.get("num_examples") == 120
    assert fileio.glob(fileio.join(transformed.split_uri("train"), "*"))
    assert fileio.exists(fileio.join(statistics.split_uri("train"), "FeatureStats.pb"))
    assert not os.path.exists(root) and not os.path.exists("ram:")
    again = LocalRunner(store, root, out=io.StringIO()).run(pipeline)  # the cache finds them there
    assert all(r.cached for r in again.components.values())
