"""What the views share: the config and the one model-server client (no model is ever loaded here)."""

from __future__ import annotations

import dataclasses

from flask import current_app

from serving.client import ModelServerError, ServerUnavailable, read_captcha, read_digit
from serving.frontend.config import FrontendConfig


@dataclasses.dataclass
class Services:
    config: FrontendConfig
    client: object  # serving.client.RestClient or GrpcClient

    def read_captcha(self, image: bytes):
        return read_captcha(self.client, self.config.captcha_model, image)

    def read_digit(self, image: bytes):
        return read_digit(self.client, self.config.mnist_model, image)


def services() -> Services:
    return current_app.extensions["frontend"]


def explain(error: ModelServerError, model: str) -> tuple[int, str]:
    """(HTTP status, message) for a model-server error, in the words a demo visitor needs."""
    if isinstance(error, ServerUnavailable):
        return 503, f"The model server is unavailable ({error.message}). Start it with `make serve`."
    if error.code == "NOT_FOUND":
        command = "make pipeline" if model == "captcha" else f"make pipeline PIPELINE={model.split('_softmax')[0]}"
        return 503, f"The model server has no version of '{model}' loaded yet: run `{command}` first."
    if error.code in ("INVALID_ARGUMENT", "FAILED_PRECONDITION"):
        return 400, f"The model could not read this input: {error.message}"
    return 502, f"The model server answered {error.code}: {error.message}"
