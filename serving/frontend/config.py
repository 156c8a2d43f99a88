"""The frontend's settings, typed and checked where they come in."""

from __future__ import annotations

import argparse
import dataclasses
import os
from collections.abc import Callable

TRANSPORTS = ("rest", "grpc")
MAX_IMAGE_BYTES = 2 * 1024 * 1024
# What the pipelines' exported graphs refuse by default (pipelines/images.py, DEFAULT_MAX_IMAGE_PIXELS;
# the frontend imports nothing of the pipelines): refused here before anything goes to the server.
MAX_IMAGE_PIXELS = 20_000_000


@dataclasses.dataclass(frozen=True)
class FrontendConfig:
    rest_url: str = "http://127.0.0.1:8501"
    grpc_target: str = "127.0.0.1:8500"
    transport: str = "rest"
    captcha_model: str = "captcha"
    captcha_charset: str = "0123456789"
    captcha_length: int = 4
    house_price_model: str = "house_price"
    mnist_model: str = "mnist"  # the digits page (pipelines run mnist pushes the CNN as "mnist")
    models_config: str = "serving_models/models.config"  # which models the Models page lists, and their labels
    runs_dir: str = "runs"  # where `pipelines run` keeps runs and metadata.sqlite
    timeout_seconds: float = 10.0
    max_image_bytes: int = MAX_IMAGE_BYTES
    max_image_pixels: int = MAX_IMAGE_PIXELS

    def __post_init__(self) -> None:
        if self.transport not in TRANSPORTS:
            raise ValueError(f"transport must be one of {TRANSPORTS}, got {self.transport!r}")
        if not self.rest_url.startswith(("http://", "https://")):
            raise ValueError(f"rest_url must be an http(s) URL, got {self.rest_url!r}")
        if min(self.timeout_seconds, self.max_image_bytes, self.max_image_pixels, self.captcha_length) <= 0:
            raise ValueError("timeout_seconds, max_image_bytes, max_image_pixels and captcha_length must be positive")
        if not self.captcha_charset:
            raise ValueError("captcha_charset must not be empty")

    @property
    def metadata_path(self) -> str:
        return os.path.join(self.runs_dir, "metadata.sqlite")


def port_argument(lowest: int) -> Callable[[str], int]:
    """An argparse type: a TCP port from `lowest` (0: pick a free one, where a caller can) to 65535.
    Out of range, a listener would take the number modulo 65536 without a word."""

    def port(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
        if not lowest <= value <= 65535:
            raise argparse.ArgumentTypeError(f"a port must be within {lowest}..65535, got {value}")
        return value

    return port


def charset_argument(text: str) -> str:
    """An argparse type: the characters generated captchas are drawn from, at least one, none twice.
    Checked on the command line, so `make serve` does not start a model server for a frontend that
    then refuses the setting."""
    if not text or len(set(text)) != len(text):
        raise argparse.ArgumentTypeError(f"the characters must be at least one, none twice, got {text!r}")
    return text
