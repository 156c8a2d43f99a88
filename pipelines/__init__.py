"""Pipelines: DAGs of components, the runner that executes them, and the CLI."""

import os

os.environ.setdefault(
    "TF_USE_LEGACY_KERAS", "1"
)  # Keras 2, set before any TensorFlow import: see components/__init__.py
