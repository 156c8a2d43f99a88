"""Digit images for tests that must not depend on ../shared: MNIST-like 28x28 renderings of
the digits in matplotlib's DejaVu fonts (light ink on black, like MNIST), written as IDX."""

from __future__ import annotations

import os

import matplotlib
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from components.example_gen.idx_source import TEST_FILES, TRAIN_FILES, write_idx

FONT_DIR = os.path.join(os.path.dirname(matplotlib.__file__), "mpl-data", "fonts", "ttf")
FONTS = ("DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSerif.ttf", "DejaVuSansMono.ttf")


def digit_image(digit: int, rng: np.random.Generator, size: int = 28) -> np.ndarray:
    """One digit, light on black, in a random font, size, rotation and offset: uint8 [size, size]."""
    font = ImageFont.truetype(os.path.join(FONT_DIR, FONTS[rng.integers(len(FONTS))]), int(rng.integers(40, 56)))
    canvas = Image.new("L", (64, 64), 0)
    ImageDraw.Draw(canvas).text((32, 32), str(digit), fill=255, font=font, anchor="mm")
    canvas = canvas.rotate(float(rng.uniform(-12, 12)), resample=Image.BILINEAR)
    small = canvas.resize((size, size), Image.LANCZOS)
    return np.roll(np.asarray(small), (int(rng.integers(-2, 3)), int(rng.integers(-2, 3))), axis=(0, 1))


def digits(count: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, count).astype(np.uint8)
    return np.stack([digit_image(int(d), rng) for d in labels]), labels


def write_mnist(
    folder: str, test_count: int, train_count: int = 0, gzip: bool = True, seed: int = 0, mislabel: float = 0.0
) -> str:
    """t10k-* (and train-* when train_count) IDX files of rendered digits in `folder`; a `mislabel` share of
    the labels is replaced by another digit, so a model that reads the image answers "wrong" there."""
    os.makedirs(folder, exist_ok=True)
    suffix = ".gz" if gzip else ""
    for (images_name, labels_name), count, offset in ((TEST_FILES, test_count, 0), (TRAIN_FILES, train_count, 1)):
        if count:
            images, labels = digits(count, seed + offset)
            flip = np.random.default_rng(seed + 100 + offset).random(count) < mislabel
            labels = np.where(flip, (labels + 5) % 10, labels).astype(np.uint8)
            write_idx(images, os.path.join(folder, images_name + suffix))
            write_idx(labels, os.path.join(folder, labels_name + suffix))
    return folder
