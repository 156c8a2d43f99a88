"""tf.Transform preprocessing for MNIST: any digit image -> MNIST's own framing; the label text -> 0-9.

MNIST's digits are light ink on black, scaled so the digit fits a 20x20 box and centred
by its centre of mass in 28x28. `frame_digit` does the same to any image: it makes the ink
light (a light background is inverted), stretches the contrast, crops to the ink, scales
it into 20x20 keeping its aspect ratio and centres the mass. The exported model runs the
same functions, so a photo of a digit in black pen, a canvas drawing and MNIST's own
784 floats all reach the network framed as its training images were.
"""

from __future__ import annotations

import tensorflow as tf

from pipelines.images import DEFAULT_MAX_IMAGE_PIXELS, decode_grey

IMAGE_KEY = "image"
LABEL_KEY = "label"
SIZE = 28  # MNIST's images are 28x28
BOX = 20  # and the digit fits 20x20 inside them
INK = 0.25  # after contrast stretching, pixels above this are ink when cropping
DIGITS = "0123456789"  # class i is the digit DIGITS[i]


def frame_digit(image: tf.Tensor) -> tf.Tensor:
    """[height, width, 1] grey levels in [0, 1], either polarity -> [28, 28, 1] MNIST-framed ink in [0, 1].
    A blank image stays blank (zeros)."""
    image = tf.image.convert_image_dtype(image, tf.float32)
    border = tf.concat(
        [
            tf.reshape(image[0], [-1]),
            tf.reshape(image[-1], [-1]),
            tf.reshape(image[:, 0], [-1]),
            tf.reshape(image[:, -1], [-1]),
        ],
        axis=0,
    )
    image = tf.cond(tf.reduce_mean(border) > 0.5, lambda: 1.0 - image, lambda: image)  # ink light, page dark
    low, high = tf.reduce_min(image), tf.reduce_max(image)
    image = tf.math.divide_no_nan(image - low, high - low)
    mask = image[:, :, 0] > INK
    rows = tf.cast(tf.where(tf.reduce_any(mask, axis=1))[:, 0], tf.int32)
    columns = tf.cast(tf.where(tf.reduce_any(mask, axis=0))[:, 0], tf.int32)

    def framed():
        top, bottom, left, right = rows[0], rows[-1] + 1, columns[0], columns[-1] + 1
        digit = image[top:bottom, left:right]
        height, width = bottom - top, right - left
        side = tf.maximum(height, width)
        square = tf.image.pad_to_bounding_box(digit, (side - height) // 2, (side - width) // 2, side, side)
        boxed = tf.image.resize(square, [BOX, BOX], antialias=True)
        margin = (SIZE - BOX) // 2
        placed = tf.pad(boxed, [[margin, margin], [margin, margin], [0, 0]])
        return centre_of_mass(tf.clip_by_value(placed, 0.0, 1.0))

    return tf.cond(tf.size(rows) > 0, framed, lambda: tf.zeros([SIZE, SIZE, 1]))


def centre_of_mass(image: tf.Tensor) -> tf.Tensor:
    """[28, 28, 1] shifted (bilinear, zeros shifted in) so its intensity's centre of mass is the centre."""
    weights = image[:, :, 0]
    total = tf.reduce_sum(weights)
    grid = tf.range(SIZE, dtype=tf.float32)
    cy = tf.reduce_sum(tf.reduce_sum(weights, axis=1) * grid) / total
    cx = tf.reduce_sum(tf.reduce_sum(weights, axis=0) * grid) / total
    centre = (SIZE - 1) / 2
    dy, dx = cy - centre, cx - centre  # output (x, y) reads the input at (x + dx, y + dy)
    transform = tf.stack([1.0, 0.0, dx, 0.0, 1.0, dy, 0.0, 0.0])[None]
    moved = tf.raw_ops.ImageProjectiveTransformV3(
        images=image[None],
        transforms=transform,
        output_shape=[SIZE, SIZE],
        fill_value=0.0,
        interpolation="BILINEAR",
        fill_mode="CONSTANT",
    )
    return moved[0]


def decode_digits(encoded: tf.Tensor, max_pixels: int = DEFAULT_MAX_IMAGE_PIXELS) -> tf.Tensor:
    """[batch] encoded images (PNG, JPEG, GIF, BMP; any size, colour or grey) -> [batch, 28, 28, 1].
    Images whose header claims more than `max_pixels` are refused before decoding."""

    def decode_one(data):
        return frame_digit(decode_grey(data, max_pixels))

    return tf.map_fn(decode_one, encoded, fn_output_signature=tf.TensorSpec([SIZE, SIZE, 1], tf.float32))


def frame_pixels(images: tf.Tensor) -> tf.Tensor:
    """[batch, 784] floats in [0, 1] (TF Serving's MNIST tutorial input) -> [batch, 28, 28, 1]."""
    square = tf.reshape(tf.clip_by_value(tf.cast(images, tf.float32), 0.0, 1.0), [-1, SIZE, SIZE, 1])
    return tf.map_fn(frame_digit, square, fn_output_signature=tf.TensorSpec([SIZE, SIZE, 1], tf.float32))


def label_to_id(labels: tf.Tensor) -> tf.Tensor:
    """[batch] digit text -> [batch] int64 0-9; -1 for anything else."""
    labels = tf.strings.strip(labels)
    digit = tf.strings.regex_full_match(labels, "[0-9]")
    return tf.where(digit, tf.strings.to_number(tf.where(digit, labels, "0"), tf.int64), tf.constant(-1, tf.int64))


def make_preprocessing_fn(params: dict):
    max_pixels = int(params.get("max_image_pixels") or DEFAULT_MAX_IMAGE_PIXELS)

    def preprocessing_fn(inputs):
        outputs = {IMAGE_KEY: decode_digits(tf.reshape(inputs[IMAGE_KEY], [-1]), max_pixels)}
        if LABEL_KEY in inputs:
            outputs[LABEL_KEY] = label_to_id(tf.reshape(inputs[LABEL_KEY], [-1]))
        return outputs

    return preprocessing_fn
