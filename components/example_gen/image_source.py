"""An image folder: `<label>.<ext>` files (the book's layout) or one subfolder per label."""

from __future__ import annotations

import io
import os
import warnings

import tensorflow as tf
from PIL import Image

from components.base.tf_errors import without_annotations

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


# The graphs' default limit (pipelines/images.py DEFAULT_MAX_IMAGE_PIXELS): an image whose header
# claims more is not decoded to be checked (a 16000x16000 PNG of a few kB would take 768 MB).
DECODE_CHECK_MAX_PIXELS = 20_000_000


# The largest image file read whole into a worker's memory: a 20-megapixel RGBA PNG of noise is
# about 80 MB, and the graphs refuse more pixels than that anyway.
MAX_IMAGE_FILE_BYTES = 128 * 1024 * 1024


def _claimed_pixels(data: bytes) -> int:
    """Width x height from the header (Pillow reads only that on open); 0 when Pillow cannot tell,
    and TensorFlow's decoder, the graphs' own, then has the last word."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            with Image.open(io.BytesIO(data)) as image:
                return image.width * image.height
        except Image.DecompressionBombError:
            return DECODE_CHECK_MAX_PIXELS + 1
        except Exception:  # noqa: BLE001 - any header Pillow cannot read: TensorFlow decides below
            return 0


def read_image(path: str) -> bytes:
    """The file's bytes, refused by name when they are not a PNG, JPEG, GIF or BMP, or are one that
    TensorFlow cannot decode (a truncated download, a broken copy): one such file used to fail the
    Transform much later, with TensorFlow's words ("Fetching the values for the following Tensor
    keys") and no file name. Decoded here by the op the graphs use, so what passes decodes there."""
    if "://" not in path:  # on this machine: a FIFO named x.png blocked the job until its deadline
        if not os.path.isfile(path):
            raise NotAnImage(f"{path}: not a regular file")
        size = os.path.getsize(path)
        if size > MAX_IMAGE_FILE_BYTES:
            raise NotAnImage(f"{path}: {size:,} bytes; image files over {MAX_IMAGE_FILE_BYTES:,} bytes are refused")
    with tf.io.gfile.GFile(path, "rb") as f:
        data = f.read()
    kind = next((kind for magic, kind in _MAGIC.items() if data.startswith(magic)), None)
    if kind is None:
        raise NotAnImage(f"{path}: not a PNG, JPEG, GIF or BMP image (its first bytes: {data[:8]!r})")
    if _claimed_pixels(data) > DECODE_CHECK_MAX_PIXELS:
        return data  # not decoded here: the graphs refuse it by its header, with the size
    try:
        tf.io.decode_image(data, expand_animations=False)
    except tf.errors.OpError as error:
        reason = without_annotations(error.message)
        raise NotAnImage(f"{path}: a {kind} file that cannot be decoded ({reason}; {len(data)} bytes)") from None
    return data
