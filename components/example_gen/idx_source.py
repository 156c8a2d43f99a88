"""The IDX format of MNIST (http://yann.lecun.com/exdb/mnist/), gzip or not.

An IDX file is a 4-byte magic (two zero bytes, a type code, the number of
dimensions), one big-endian uint32 per dimension, then the values in C order.
MNIST ships four of them: `train-images-idx3-ubyte` and `train-labels-idx1-ubyte`
(60,000), `t10k-images-idx3-ubyte` and `t10k-labels-idx1-ubyte` (10,000).
Everything wrong with a file (its magic, its length, images and labels that do
not pair up) is an `IdxError` whose message names the file.

Local paths are read with plain Python, other URIs (gs://, ...) through
components.base.fileio: `pipelines run mnist` checks a --data folder's files
before it imports TensorFlow, so a bad file is answered in a fraction of a second.
"""

from __future__ import annotations

import dataclasses
import gzip
import io
import math
import os
import struct

import numpy as np

# Type codes of the IDX format and the big-endian numpy types they stand for.
IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
GZIP_MAGIC = b"\x1f\x8b"
# (images, labels) file stems of MNIST's two sets.
TRAIN_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte")
TEST_FILES = ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


class IdxError(ValueError):
    """A file that is not the IDX its name or role promises."""


class _LocalDisk:
    """The part of components.base.fileio this module uses, for paths on the local disk."""

    join = staticmethod(os.path.join)
    exists = staticmethod(os.path.exists)
    isdir = staticmethod(os.path.isdir)
    open = staticmethod(open)

    @staticmethod
    def read_bytes(path: str) -> bytes:
        with open(path, "rb") as f:
            return f.read()


def _files(uri: str):
    """The file layer for `uri`: plain Python for a local path, components.base.fileio (TensorFlow's
    and Beam's filesystems) for any other URI."""
    if "://" not in uri:
        return _LocalDisk
    from components.base import fileio

    return fileio


def read_idx(path: str) -> np.ndarray:
    """The array an IDX file holds (gzip-compressed or not, told by its first bytes)."""
    raw = _files(path).read_bytes(path)
    if raw[:2] == GZIP_MAGIC:
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, gzip.BadGzipFile) as error:
            raise IdxError(f"{path}: not a readable gzip file ({error})") from None
    return parse_idx(raw, path)


def parse_idx(raw: bytes, name: str = "<bytes>") -> np.ndarray:
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in IDX_TYPES or raw[3] == 0:
        raise IdxError(
            f"{name}: not an IDX file (wrong magic {raw[:4].hex() or 'none'}; expected 0000, a type code, a rank)"
        )
    dtype, rank = np.dtype(IDX_TYPES[raw[2]]), raw[3]
    header = 4 + 4 * rank
    if len(raw) < header:
        raise IdxError(f"{name}: truncated header ({len(raw)} bytes, a rank-{rank} header needs {header})")
    shape = struct.unpack(f">{rank}I", raw[4:header])
    expected = math.prod(shape) * dtype.itemsize  # Python ints: a claimed 2^64 does not overflow
    if len(raw) - header != expected:
        what = "truncated" if len(raw) - header < expected else "has trailing bytes"
        raise IdxError(f"{name}: {what}: shape {list(shape)} needs {expected} bytes of data, found {len(raw) - header}")
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)


def write_idx(array: np.ndarray, path: str, compress: bool | None = None) -> None:
    """`array` as an IDX file (uint8 or any IDX type); gzip when the path ends in .gz or `compress`."""
    codes = {np.dtype(v).newbyteorder("="): k for k, v in IDX_TYPES.items()}
    code = codes.get(array.dtype.newbyteorder("="))
    if code is None:
        raise IdxError(f"IDX has no type for {array.dtype}")
    data = struct.pack(f">BBBB{array.ndim}I", 0, 0, code, array.ndim, *array.shape)
    data += np.ascontiguousarray(array).astype(IDX_TYPES[code]).tobytes()
    if compress if compress is not None else path.endswith(".gz"):
        data = gzip.compress(data, mtime=0)
    with _files(path).open(path, "wb") as f:
        f.write(data)


def find_file(directory: str, stem: str) -> str | None:
    """`stem` or `stem.gz` in `directory` (also MNIST's dotted mirror names, e.g. `t10k-images.idx3-ubyte`)."""
    candidates, files = [stem, stem.replace("-idx", ".idx")], _files(directory)
    for name in candidates:
        for suffix in ("", ".gz"):
            path = files.join(directory, name + suffix)
            if files.exists(path) and not files.isdir(path):
                return path
    return None


@dataclasses.dataclass(frozen=True)
class IdxPair:
    """One MNIST set: its images file, its labels file, how many it holds."""

    name: str  # "train" or "t10k"
    images_path: str
    labels_path: str

    def load(self) -> tuple[np.ndarray, np.ndarray]:
        images, labels = read_idx(self.images_path), read_idx(self.labels_path)
        if images.ndim != 3:
            raise IdxError(
                f"{self.images_path}: images must be rank 3 (count, rows, columns), got shape {list(images.shape)}"
            )
        if labels.ndim != 1:
            raise IdxError(f"{self.labels_path}: labels must be rank 1 (count), got shape {list(labels.shape)}")
        if len(images) != len(labels):
            raise IdxError(
                f"{self.images_path} holds {len(images)} images but {self.labels_path} holds {len(labels)} labels"
            )
        if images.dtype != np.uint8:
            raise IdxError(f"{self.images_path}: images must be unsigned bytes (type 0x08), got {images.dtype}")
        if len(labels) and (labels.min() < 0 or labels.max() > 9):
            raise IdxError(f"{self.labels_path}: labels must be digits 0-9, found {labels.min()}..{labels.max()}")
        return images, labels


def find_sets(directory: str) -> dict[str, IdxPair]:
    """The MNIST sets in `directory`: {"train": ..., "t10k": ...}, whichever are complete.
    A set with one file of its pair is an error (the other is missing)."""
    if not _files(directory).isdir(directory):
        raise FileNotFoundError(f"no such folder: {directory}")
    found = {}
    for name, (image_stem, label_stem) in (("train", TRAIN_FILES), ("t10k", TEST_FILES)):
        images, labels = find_file(directory, image_stem), find_file(directory, label_stem)
        if images and labels:
            found[name] = IdxPair(name, images, labels)
        elif images or labels:
            missing = label_stem if images else image_stem
            raise IdxError(
                f"{directory}: {missing}[.gz] is missing (its pair {os.path.basename(images or labels)} is there)"
            )
    if not found:
        raise IdxError(
            f"{directory}: no MNIST IDX files ({TEST_FILES[0]}[.gz] and {TEST_FILES[1]}[.gz], "
            f"and optionally the train-* pair)"
        )
    return found


def encode_png(pixels: np.ndarray) -> bytes:
    """A uint8 [rows, columns] array as a greyscale PNG (MNIST: light ink on black)."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(pixels, mode="L").save(buffer, format="PNG")
    return buffer.getvalue()
