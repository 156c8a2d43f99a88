"""The frontend as a WSGI application for a production server:

    gunicorn --bind 127.0.0.1:5000 --workers 2 --threads 4 'serving.frontend.wsgi:app'

Settings come from the environment (each a FrontendConfig field): FRONTEND_REST_URL,
FRONTEND_GRPC_TARGET, FRONTEND_TRANSPORT, FRONTEND_MODELS_CONFIG, FRONTEND_RUNS_DIR,
FRONTEND_CAPTCHA_CHARSET, FRONTEND_MNIST_MODEL, ...; several workers share one
FRONTEND_SECRET_KEY for the forms' CSRF tokens."""

from __future__ import annotations

import dataclasses
import os

from serving.frontend import create_app
from serving.frontend.config import FrontendConfig


def config_from_environment(environ: os._Environ | dict = os.environ) -> FrontendConfig:
    """FrontendConfig from FRONTEND_* variables; a ValueError naming the variable when one is not what
    its field takes (the worker then fails to boot with that line, not int()'s bare "invalid literal")."""
    values = {}
    for field in dataclasses.fields(FrontendConfig):
        name = f"FRONTEND_{field.name.upper()}"
        raw = environ.get(name)
        if raw is not None:
            kind = {"int": int, "float": float}.get(str(field.type), str)
            try:
                values[field.name] = kind(raw)
            except ValueError:
                raise ValueError(
                    f"{name}: expected {'an integer' if kind is int else 'a number'}, got {raw!r}"
                ) from None
    try:
        return FrontendConfig(**values)
    except ValueError as error:
        raise ValueError(f"frontend settings from the environment (FRONTEND_*): {error}") from None


app = create_app(config_from_environment())
