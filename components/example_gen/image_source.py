"""An image folder: `<label>.<ext>` files (the book's layout) or one subfolder per label."""

from __future__ import annotations

import os
import re

import tensorflow as tf

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".gif", ".bmp")


def label_from_filename(name: str) -> str:
    """`1234.png` -> `1234`; `1234_7.png` -> `1234` (a suffix after `_` keeps names unique)."""
    stem = os.path.splitext(name)[0]
    return stem.split("_", 1)[0]


def list_images(root: str) -> list[tuple[str, str, str]]:
    """(key, path, label) for every image under `root`, sorted by key."""
    if not tf.io.gfile.isdir(root):
        raise FileNotFoundError(f"no such image folder: {root}")
    found = []
    for entry in sorted(tf.io.gfile.listdir(root)):
        path = os.path.join(root, entry.rstrip("/"))
        if tf.io.gfile.isdir(path):
            label = entry.rstrip("/")
            for name in sorted(tf.io.gfile.listdir(path)):
                if name.lower().endswith(IMAGE_EXTENSIONS):
                    found.append((f"{label}/{name}", os.path.join(path, name), label))
        elif entry.lower().endswith(IMAGE_EXTENSIONS):
            found.append((entry, path, label_from_filename(entry)))
    if not found:
        raise ValueError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) found in {root}")
    return found


# The formats the pipelines' graphs decode (tf.io.decode_image), by their first bytes.
_MAGIC = {b"\x89PNG\r\n\x1a\n": "PNG", b"\xff\xd8\xff": "JPEG", b"GIF87a": "GIF", b"GIF89a": "GIF", b"BM": "BMP"}


class NotAnImage(ValueError):
    """A file in the image folder that the pipeline could not decode."""


def read_image(path: str) -> bytes:
    """The file's bytes, refused by name when they are not a PNG, JPEG, GIF or BMP, or are one that
    TensorFlow cannot decode (a truncated download, a broken copy): one such file used to fail the
    Transform much later, with TensorFlow's words ("Fetching the values for the following Tensor
    keys") and no file name. Decoded here by the op the graphs use, so what passes decodes there."""
    with tf.io.gfile.GFile(path, "rb") as f:
        data = f.read()
    kind = next((kind for magic, kind in _MAGIC.items() if data.startswith(magic)), None)
    if kind is None:
        raise NotAnImage(f"{path}: not a PNG, JPEG, GIF or BMP image (its first bytes: {data[:8]!r})")
    try:
        tf.io.decode_image(data, expand_animations=False)
    except tf.errors.OpError as error:
        reason = re.sub(r"\{\{[^}]*\}\}|\[Op:[^\]]*\]( name:.*)?", "", error.message).strip()
        raise NotAnImage(f"{path}: a {kind} file that cannot be decoded ({reason}; {len(data)} bytes)") from None
    return data
