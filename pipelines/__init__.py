"""Pipelines: DAGs of components, the runner that executes them, and the CLI."""

import os

# Keras 2, set before any TensorFlow import: components/__init__.py says why.
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
