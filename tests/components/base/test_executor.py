"""components/base/executor.py: what a Beam executor leaves in the artifacts it wrote."""

from __future__ import annotations

import glob
import os

import apache_beam as beam
import tensorflow as tf

from components.base import BaseBeamExecutor, Examples


def _write(pipeline, examples: Examples, split: str, records: list[bytes]) -> None:
    _ = (
        pipeline
        | f"Create[{split}]" >> beam.Create(records)
        | f"Write[{split}]" >> beam.io.WriteToTFRecord(examples.split_prefix(split), file_name_suffix=".tfrecord")
    )


def test_split_files_are_the_data_files_and_nothing_else_in_the_folder(tmp_path):
    examples = Examples(uri=str(tmp_path / "examples"))
    folder = examples.split_uri("train")
    os.makedirs(os.path.join(folder, "beam-temp-data-0123abcd"))
    for name in ("data-00000-of-00002.tfrecord.gz", "data-00001-of-00002.tfrecord.gz", "notes.txt"):
        open(os.path.join(folder, name), "w").close()
    assert sorted(os.path.basename(p) for p in glob.glob(examples.split_files("train"))) == [
        "data-00000-of-00002.tfrecord.gz",
        "data-00001-of-00002.tfrecord.gz",
    ]


def test_an_earlier_attempts_temporary_folder_is_gone_once_the_job_succeeds(tmp_path):
    """As a Flink job restarted after a lost TaskManager leaves it: the first attempt's beam-temp-*
    folder, with a half-written file, beside the second attempt's finished files."""
    examples = Examples(uri=str(tmp_path / "examples"))
    abandoned = os.path.join(examples.split_uri("train"), "beam-temp-data-0123abcd")
    os.makedirs(abandoned)
    with open(os.path.join(abandoned, "a1b2c3"), "wb") as f:
        f.write(b"half a record")
    other = tmp_path / "not-written" / "Split-x" / "beam-temp-data-4567"
    other.mkdir(parents=True)

    executor = BaseBeamExecutor()
    pipeline = executor._make_beam_pipeline()
    _write(pipeline, examples, "train", [b"a", b"b", b"c"])
    _write(pipeline, examples, "eval", [b"d"])
    executor._run_beam_pipeline(pipeline, written=[examples])

    for split, expected in (("train", [b"a", b"b", b"c"]), ("eval", [b"d"])):
        names = os.listdir(examples.split_uri(split))
        assert names and all(name.startswith("data-") for name in names), names
        files = sorted(glob.glob(examples.split_files(split)))
        assert sorted(r.numpy() for r in tf.data.TFRecordDataset(files)) == expected
    assert other.is_dir()  # only the artifacts the job wrote are tidied
