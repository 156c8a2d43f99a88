"""Encoded images inside exported graphs: how many pixels a header claims, read before decoding.

Every pipeline whose model takes image bytes decodes them in its tf.Transform graph, which
the exported model embeds; the size check lives there so that every server loading the
model (ours or TensorFlow Serving) refuses an oversized image with INVALID_ARGUMENT.
"""

from __future__ import annotations

import tensorflow as tf

# The most pixels an image may claim before it is decoded (20 megapixels; a captcha is 10,000).
# A 276 KB PNG can claim 16000x16000: decoding it would take ~1 GiB. Set per run with
# --param max_image_pixels=N; the check lives in the exported graph, so every server that
# loads the model (ours or TensorFlow Serving) refuses such images with INVALID_ARGUMENT.
DEFAULT_MAX_IMAGE_PIXELS = 20_000_000


def _le(b: tf.Tensor, start: int, count: int) -> tf.Tensor:
    return tf.add_n([b[start + i] * 256**i for i in range(count)])


def _be(b: tf.Tensor, start: int, count: int) -> tf.Tensor:
    return tf.add_n([b[start + i] * 256 ** (count - 1 - i) for i in range(count)])


def claimed_pixels(data: tf.Tensor) -> tf.Tensor:
    """Width x height an encoded image's header claims (int64 scalar), read without decoding it:
    PNG's IHDR, GIF's logical screen, BMP's info header, JPEG's frame header; 0 for anything else
    (the decoder then refuses it)."""
    head = tf.strings.substr(tf.strings.join([tf.strings.substr(data, 0, 32), tf.constant(b"\0" * 32)]), 0, 32)
    b = tf.cast(tf.io.decode_raw(head, tf.uint8), tf.int64)

    def starts(magic: bytes) -> tf.Tensor:
        return tf.reduce_all(tf.equal(b[: len(magic)], tf.constant(list(magic), tf.int64)))

    def jpeg():
        shape = tf.cast(tf.image.extract_jpeg_shape(data), tf.int64)
        return shape[0] * shape[1]

    def bmp():
        height = _le(b, 22, 4)
        height = tf.where(height >= 1 << 31, (1 << 32) - height, height)  # negative: a top-down bitmap
        return _le(b, 18, 4) * height

    return tf.case(
        [
            (starts(b"\x89PNG\r\n\x1a\n"), lambda: _be(b, 16, 4) * _be(b, 20, 4)),
            (starts(b"GIF8"), lambda: _le(b, 6, 2) * _le(b, 8, 2)),
            (starts(b"BM"), bmp),
            (starts(b"\xff\xd8\xff"), jpeg),
        ],
        default=lambda: tf.constant(0, tf.int64),
        exclusive=True,
    )


def checked_image_bytes(data: tf.Tensor, max_pixels: int = DEFAULT_MAX_IMAGE_PIXELS) -> tf.Tensor:
    """`data` (one encoded image), passed on only once its header claims at most `max_pixels`."""
    check = tf.debugging.assert_less_equal(
        claimed_pixels(data),
        tf.constant(max_pixels, tf.int64),
        message=f"image too large: its header claims more than {max_pixels} pixels (width x height)",
    )
    with tf.control_dependencies([check]):
        return tf.identity(data)


def decode_grey(data: tf.Tensor, max_pixels: int = DEFAULT_MAX_IMAGE_PIXELS) -> tf.Tensor:
    """One encoded image (PNG, JPEG, GIF, BMP; grey, colour or with alpha) -> [height, width, 1] uint8 grey,
    refused before decoding when its header claims more than `max_pixels`. Decoded as RGB first:
    TensorFlow's BMP decoder has no one-channel mode."""
    rgb = tf.io.decode_image(checked_image_bytes(data, max_pixels), channels=3, expand_animations=False)
    return tf.image.rgb_to_grayscale(rgb)
