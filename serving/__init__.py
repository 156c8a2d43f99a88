"""Serving: the TF-Serving-compatible model server, its one client (client.py), the Flask demo
frontend and the deployment files for the official server. `python -m serving` is `make serve`."""

import os

# Keras 2, set before any TensorFlow import: components/__init__.py says why.
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
