"""Running components for tests: through the real runner, on a real ML Metadata SQLite store."""

from __future__ import annotations

import glob
import io

import tensorflow as tf

from pipelines.metadata import MetadataStore, sqlite_config
from pipelines.pipeline import Pipeline
from pipelines.runner import LocalRunner


def run_components(tmp_path, components, name="test", beam_args=None):
    store = MetadataStore(sqlite_config(str(tmp_path / "metadata.sqlite")))
    runner = LocalRunner(store, str(tmp_path / name), beam_pipeline_args=beam_args, out=io.StringIO())
    return runner.run(Pipeline(name, components))


def read_examples(artifact, split: str) -> list[tf.train.Example]:
    files = sorted(glob.glob(artifact.split_files(split)))
    records = tf.data.TFRecordDataset(files, compression_type="GZIP") if files else []
    return [tf.train.Example.FromString(r.numpy()) for r in records]


def feature_values(example: tf.train.Example, name: str) -> list:
    feature = example.features.feature[name]
    kind = feature.WhichOneof("kind")
    return list(getattr(feature, kind).value) if kind else []
