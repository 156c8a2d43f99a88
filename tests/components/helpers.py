"""Running components for tests: through the real runner, on a real ML Metadata SQLite store."""

from __future__ import annotations

import glob
import io
import os
import shutil

import tensorflow as tf

from components.example_gen import CsvExampleGen
from pipelines.house_price import SCHEMA_PATH as HOUSE_SCHEMA
from pipelines.metadata import MetadataStore, sqlite_config
from pipelines.pipeline import Pipeline
from pipelines.runner import LocalRunner
from pipelines.stages import data_stages


def store_in(folder, seed_store: str | None = None) -> MetadataStore:
    """The SQLite store at folder/metadata.sqlite. `seed_store`: a store to start from when there is
    none there yet (a copy: its executions are cache hits, their artifacts are only read)."""
    path = os.path.join(str(folder), "metadata.sqlite")
    if seed_store and not os.path.exists(path):
        shutil.copyfile(seed_store, path)
    return MetadataStore(sqlite_config(path))


def run_components(tmp_path, components, name="test", beam_args=None, seed_store=None):
    """Run `components` in the store at tmp_path/metadata.sqlite (`store_in`, seeded or not)."""
    store = store_in(tmp_path, seed_store)
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


# --- the data stages on a small house-price CSV (StatisticsGen, SchemaGen, ExampleValidator tests) ---
ROWS = [(2104, 3, 399900), (1600, 3, 329900), (2400, 3, 369000), (1416, 2, 232000), (3000, 4, 539900)] * 8
BAD_ROWS = ROWS + [(1800, 25, 300000)] * 10  # 25 bedrooms: outside the curated schema's 1..20
HOUSE_PREPROCESSING = "pipelines.house_price.preprocessing:make_preprocessing_fn"


def write_csv(path, rows, header="area,bedrooms,price"):
    with open(path, "w") as f:
        if header:
            f.write(header + "\n")
        for row in rows:
            f.write(",".join(str(v) for v in row) + "\n")
    return str(path)


def data_components(csv_path, schema_path=None, stop=True):
    """ExampleGen, then StatisticsGen -> SchemaGen -> ExampleValidator wired as every pipeline wires them."""
    gen = CsvExampleGen(input_path=csv_path, schema_path=HOUSE_SCHEMA, splits="train:1,eval:1")
    stats, schema, validator, _transform = data_stages(gen, schema_path, stop, HOUSE_PREPROCESSING)
    return [gen, stats, schema, validator]


def house_upstream(root) -> dict[str, str]:
    """ExampleGen and StatisticsGen run on ROWS ("clean") and on BAD_ROWS ("bad"), each in a store of
    its own under `root`: the stores to seed `run_components` with (the `house_upstream` fixture).

    The cache key holds a CSV's content, not its path, so a test that writes the same rows to a CSV
    of its own and runs `data_components` on a copy of the store gets both as cache hits: StatisticsGen
    alone was 10 s of CPU per run, and these tests ran the same two CSVs through both seven times."""
    stores = {}
    for name, rows in (("clean", ROWS), ("bad", BAD_ROWS)):
        folder = root / name
        folder.mkdir()
        run_components(folder, data_components(write_csv(folder / "h.csv", rows), HOUSE_SCHEMA)[:2])
        stores[name] = str(folder / "metadata.sqlite")
    return stores
