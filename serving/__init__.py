"""Serving: the TF-Serving-compatible model server, its one client (client.py), the Flask demo
frontend and the deployment files for the official server. `python -m serving` is `make serve`."""

import os

os.environ.setdefault(
    "TF_USE_LEGACY_KERAS", "1"
)  # Keras 2, set before any TensorFlow import: see components/__init__.py
