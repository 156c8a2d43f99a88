"""tf.Transform preprocessing for captchas: decode, grayscale, resize, normalise; text to class ids.

The same functions run inside the exported model, so serving takes encoded
image bytes of any size and format TensorFlow decodes (PNG, JPEG, GIF, BMP).
"""

from __future__ import annotations

import tensorflow as tf

from pipelines.images import DEFAULT_MAX_IMAGE_PIXELS, decode_grey

IMAGE_KEY = "image"
LABEL_KEY = "label"


def decode_images(encoded: tf.Tensor, height: int, width: int, max_pixels: int = DEFAULT_MAX_IMAGE_PIXELS) -> tf.Tensor:
    """[batch] encoded image bytes -> [batch, height, width, 1] ink intensity in [0, 1].

    Ink is 1 and the (light) background near 0: a white page of inputs near 1
    leaves a fresh network on a long plateau at chance level. Images whose header
    claims more than `max_pixels` are refused before decoding (InvalidArgumentError)."""

    def decode_one(data):
        image = tf.image.convert_image_dtype(decode_grey(data, max_pixels), tf.float32)
        return 1.0 - tf.image.resize(image, [height, width], antialias=True)

    return tf.map_fn(decode_one, encoded, fn_output_signature=tf.TensorSpec([height, width, 1], tf.float32))


def text_to_ids(labels: tf.Tensor, charset: str, length: int) -> tf.Tensor:
    """[batch] label text -> [batch, length] int64 class ids; -1 marks a character outside the charset
    or a missing position (a label of the wrong length)."""
    table = tf.lookup.StaticHashTable(
        tf.lookup.KeyValueTensorInitializer(tf.constant(list(charset)), tf.range(len(charset), dtype=tf.int64)),
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
