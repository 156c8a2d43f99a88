"""Images coming in (uploads, base64) and going out (generated captchas)."""

from __future__ import annotations

import base64
import binascii
import io
import secrets

from captcha.image import ImageCaptcha
from PIL import Image, UnidentifiedImageError

ACCEPTED_FORMATS = {"PNG", "JPEG", "GIF", "BMP"}  # what tf.io.decode_image reads in the model


class BadImage(ValueError):
    """An image the demo refuses, with a message for the person who sent it."""


def check_image(data: bytes, max_bytes: int, max_pixels: int) -> str:
    """The image format, or BadImage saying what is wrong. The pixel count is read from the header:
    a 1 KB PNG can claim 16000x16000, which Pillow refuses with an exception of its own (a 500 here
    before) and the model's graph with INVALID_ARGUMENT; neither gets to decode it."""
    if not data:
        raise BadImage("no image: send a PNG or JPEG file in the 'image' field")
    if len(data) > max_bytes:
        raise BadImage(f"image is {len(data) / 1048576:.1f} MiB; the limit is {max_bytes / 1048576:.0f} MiB")
    size = None
    try:
        with Image.open(io.BytesIO(data)) as image:
            size, fmt = image.size, image.format
            if size[0] * size[1] <= max_pixels:
                image.verify()
    except Image.DecompressionBombError:
        raise BadImage(
            f"image claims more than {Image.MAX_IMAGE_PIXELS * 2:,} pixels; the limit is {max_pixels:,}"
        ) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        raise BadImage("not an image: the bytes are not a PNG, JPEG, GIF or BMP file") from None
    if size[0] * size[1] > max_pixels:
        raise BadImage(f"image is {size[0]}x{size[1]} pixels ({size[0] * size[1]:,}); the limit is {max_pixels:,}")
    if fmt not in ACCEPTED_FORMATS:
        raise BadImage(f"{fmt} images are not accepted; send PNG or JPEG")
    return fmt


def decode_base64(text) -> bytes:
    if not isinstance(text, str) or not text:
        raise BadImage("'image' must be a non-empty base64 string")
    if text.startswith("data:") and "," in text:
        text = text.split(",", 1)[1]  # a data: URL as browsers produce it
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise BadImage("'image' is not valid base64") from None


def data_url(data: bytes, fmt: str = "PNG") -> str:
    return f"data:image/{fmt.lower()};base64,{base64.b64encode(data).decode('ascii')}"


def random_captcha(charset: str, length: int) -> tuple[str, bytes]:
    """A fresh captcha from the `captcha` package at its default 160x60, like the training data."""
    text = "".join(secrets.choice(charset) for _ in range(length))
    return text, ImageCaptcha().generate(text, format="png").getvalue()
