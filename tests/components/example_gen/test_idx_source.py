"""MNIST's IDX format: reading (gzip or not), writing, and one clear error per kind of bad file;
IdxExampleGen's splits with and without the train files."""

from __future__ import annotations

import gzip
import os
import struct

import numpy as np
import pytest

from components.example_gen import IdxExampleGen
from components.example_gen.idx_source import IdxError, find_sets, parse_idx, read_idx, write_idx
from tests.components.helpers import feature_values, read_examples, run_components
from tests.pipelines.mnist_data import write_mnist


@pytest.mark.parametrize("name", ["a-idx3-ubyte", "a-idx3-ubyte.gz"])
@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.int32, np.float32, np.float64])
def test_write_then_read_gives_the_array_back(tmp_path, name, dtype):
    array = (np.arange(2 * 3 * 4) - 5).reshape(2, 3, 4).astype(dtype)
    if dtype == np.uint8:
        array = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    path = str(tmp_path / name)
    write_idx(array, path)
    with open(path, "rb") as f:
        assert (f.read(2) == b"\x1f\x8b") == name.endswith(".gz")
    back = read_idx(path)
    assert back.shape == array.shape and back.dtype.newbyteorder("=") == np.dtype(dtype)
    np.testing.assert_array_equal(back, array)


def test_a_uri_off_the_local_disk_goes_through_the_file_layer():
    """Local paths are read with plain Python (no TensorFlow for the CLI's check); anything else,
    here TensorFlow's in-memory filesystem, through components.base.fileio as before."""
    import uuid

    folder = f"ram://idx-{uuid.uuid4().hex}"
    images, labels = np.arange(2 * 28 * 28, dtype=np.uint8).reshape(2, 28, 28), np.array([3, 7], np.uint8)
    write_idx(images, f"{folder}/t10k-images-idx3-ubyte.gz")
    write_idx(labels, f"{folder}/t10k-labels-idx1-ubyte.gz")
    found = find_sets(folder)
    assert list(found) == ["t10k"] and found["t10k"].images_path.startswith("ram://")
    back_images, back_labels = found["t10k"].load()
    np.testing.assert_array_equal(back_images, images)
    np.testing.assert_array_equal(back_labels, labels)


def test_the_shared_mnist_test_files_read_as_10000_digits(shared_data):
    folder = os.path.join(shared_data, "mnist")
    images, labels = find_sets(folder)["t10k"].load()
    assert images.shape == (10_000, 28, 28) and labels.shape == (10_000,)
    assert set(np.unique(labels)) == set(range(10))
    assert images.max() == 255 and images[:, 0, :].max() == 0  # light ink on a black page


def idx_bytes(code: int, shape: tuple, data: bytes) -> bytes:
    return struct.pack(f">BBBB{len(shape)}I", 0, 0, code, len(shape), *shape) + data


@pytest.mark.parametrize(
    "raw,message",
    [
        (b"", "wrong magic"),
        (b"\x00\x01\x08\x01" + b"\0" * 8, "wrong magic"),
        (b"\x00\x00\x07\x01" + b"\0" * 8, "wrong magic"),
        (b"PK\x03\x04 a zip file", "wrong magic"),
        (b"\x00\x00\x08\x03\x00\x00", "truncated header"),
        (idx_bytes(0x08, (3, 2, 2), b"\0" * 11), "truncated"),
        (idx_bytes(0x08, (3,), b"\0" * 4), "trailing bytes"),
        (idx_bytes(0x0C, (2,), b"\0" * 4), "needs 8 bytes"),
        (idx_bytes(0x08, (2**32 - 1, 2**32 - 1), b""), "truncated"),  # claims 16 EiB: refused, not allocated
    ],
)
def test_a_bad_file_is_one_idx_error_naming_it(raw, message):
    with pytest.raises(IdxError, match=message) as raised:
        parse_idx(raw, "some-file")
    assert str(raised.value).startswith("some-file: ") and "\n" not in str(raised.value)


def test_a_broken_gzip_file_is_an_idx_error(tmp_path):
    path = tmp_path / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(idx_bytes(0x08, (1, 2, 2), b"\0" * 4))[:-9])
    with pytest.raises(IdxError, match="gzip"):
        read_idx(str(path))


def test_images_and_labels_must_pair_up(tmp_path):
    write_idx(np.zeros([5, 28, 28], np.uint8), str(tmp_path / "t10k-images-idx3-ubyte.gz"))
    write_idx(np.zeros([4], np.uint8), str(tmp_path / "t10k-labels-idx1-ubyte.gz"))
    with pytest.raises(IdxError, match="5 images but .* 4 labels"):
        find_sets(str(tmp_path))["t10k"].load()
    write_idx(np.full([5], 11, np.uint8), str(tmp_path / "t10k-labels-idx1-ubyte.gz"))
    with pytest.raises(IdxError, match="digits 0-9"):
        find_sets(str(tmp_path))["t10k"].load()
    write_idx(np.zeros([5, 784], np.uint8), str(tmp_path / "t10k-images-idx3-ubyte.gz"))
    with pytest.raises(IdxError, match="rank 3"):
        find_sets(str(tmp_path))["t10k"].load()


def test_find_sets_names_a_missing_half_and_takes_the_dotted_mirror_names(tmp_path):
    write_idx(np.zeros([2, 28, 28], np.uint8), str(tmp_path / "train-images-idx3-ubyte"))
    with pytest.raises(IdxError, match="train-labels-idx1-ubyte.* is missing"):
        find_sets(str(tmp_path))
    write_idx(np.zeros([2], np.uint8), str(tmp_path / "train-labels.idx1-ubyte"))
    assert set(find_sets(str(tmp_path))) == {"train"}
    with pytest.raises(IdxError, match="no MNIST IDX files"):
        find_sets(str(tmp_path / ".."))
    with pytest.raises(FileNotFoundError):
        find_sets(str(tmp_path / "nope"))


def _keys_by_split(artifact, splits):
    import tensorflow as tf

    found = {}
    for split in splits:
        examples = read_examples(artifact, split)
        found[split] = [feature_values(e, "label")[0].decode() for e in examples]
        for example in examples[:3]:
            image = tf.io.decode_png(feature_values(example, "image")[0])
            assert image.shape == (28, 28, 1)
    return found


def test_only_the_test_files_are_split_80_10_10_by_key_hash(tmp_path):
    folder = write_mnist(str(tmp_path / "mnist"), test_count=400, gzip=False)
    result = run_components(tmp_path, [IdxExampleGen(input_path=folder)])
    [artifact] = result.outputs("IdxExampleGen", "examples")
    labels = _keys_by_split(artifact, ["train", "eval", "test"])
    counts = {k: len(v) for k, v in labels.items()}
    assert sum(counts.values()) == 400
    assert 280 <= counts["train"] <= 360 and counts["eval"] >= 20 and counts["test"] >= 20
    assert all(label.isdigit() and len(label) == 1 for split in labels.values() for label in split)


def test_with_the_train_files_test_is_t10k_and_the_rest_share_train(tmp_path):
    folder = write_mnist(str(tmp_path / "mnist"), test_count=100, train_count=300)
    result = run_components(tmp_path, [IdxExampleGen(input_path=folder)])
    [artifact] = result.outputs("IdxExampleGen", "examples")
    counts = {split: len(read_examples(artifact, split)) for split in ("train", "eval", "test")}
    assert counts["test"] == 100
    assert counts["train"] + counts["eval"] == 300 and counts["eval"] >= 15
