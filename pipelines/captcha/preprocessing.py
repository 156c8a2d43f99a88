"""tf.Transform preprocessing for captchas: decode, grayscale, resize, normalise; text to class ids.

The same functions run inside the exported model, so serving takes encoded
image bytes of any size and format TensorFlow decodes (PNG, JPEG, GIF, BMP).
"""
from __future__ import annotations

import tensorflow as tf

IMAGE_KEY = "image"
LABEL_KEY = "label"
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


def decode_images(encoded: tf.Tensor, height: int, width: int,
                  max_pixels: int = DEFAULT_MAX_IMAGE_PIXELS) -> tf.Tensor:
    """[batch] encoded image bytes -> [batch, height, width, 1] ink intensity in [0, 1].

    Ink is 1 and the (light) background near 0: a white page of inputs near 1
    leaves a fresh network on a long plateau at chance level. Images whose header
    claims more than `max_pixels` are refused before decoding (InvalidArgumentError)."""

    def decode_one(data):
        pixels = claimed_pixels(data)
        check = tf.debugging.assert_less_equal(
            pixels, tf.constant(max_pixels, tf.int64),
            message=f"image too large: its header claims more than {max_pixels} pixels (width x height)",
        )
        with tf.control_dependencies([check]):
            data = tf.identity(data)
        image = tf.io.decode_image(data, channels=1, expand_animations=False)
        image = tf.image.convert_image_dtype(image, tf.float32)
        return 1.0 - tf.image.resize(image, [height, width], antialias=True)

    return tf.map_fn(
        decode_one, encoded, fn_output_signature=tf.TensorSpec([height, width, 1], tf.float32)
    )


def text_to_ids(labels: tf.Tensor, charset: str, length: int) -> tf.Tensor:
    """[batch] label text -> [batch, length] int64 class ids; -1 marks a character outside the charset
    or a missing position (a label of the wrong length)."""
    table = tf.lookup.StaticHashTable(
        tf.lookup.KeyValueTensorInitializer(
            tf.constant(list(charset)), tf.range(len(charset), dtype=tf.int64)
        ),
        default_value=-1,
    )
    chars = tf.strings.unicode_split(labels, "UTF-8")
    ids = tf.ragged.map_flat_values(table.lookup, chars)
    too_long = chars.row_lengths() > length
    dense = ids.to_tensor(default_value=-1, shape=[None, length])
    return tf.where(too_long[:, None], tf.constant(-1, tf.int64), dense)


def make_preprocessing_fn(params: dict):
    charset, length = params["charset"], int(params["length"])
    height, width = int(params["image_height"]), int(params["image_width"])
    max_pixels = int(params.get("max_image_pixels") or DEFAULT_MAX_IMAGE_PIXELS)

    def preprocessing_fn(inputs):
        outputs = {IMAGE_KEY: decode_images(tf.reshape(inputs[IMAGE_KEY], [-1]), height, width, max_pixels)}
        if LABEL_KEY in inputs:
            outputs[LABEL_KEY] = text_to_ids(tf.reshape(inputs[LABEL_KEY], [-1]), charset, length)
        return outputs

    return preprocessing_fn
