"""TensorFlow Serving's model layout and names, in one place, importing nothing heavy.

A model base path holds one folder per version, named by a positive integer
(`<base>/<model>/<version>/saved_model.pb`); a version may carry warmup requests in
`assets.extra/tf_serving_warmup_requests`; `models.config` (ModelServerConfig in
text format) lists the models a server loads; signatures are found by key
(`serving_default` when a request names none) and Classify and Regress accept
only signatures with their method name. The Pusher, the Evaluator, the
InfraValidator, the exports, the model server and `make serve` all use these.
"""

from __future__ import annotations

import os
from typing import Iterable

SAVED_MODEL_FILES = ("saved_model.pb", "saved_model.pbtxt")
SERVE_TAG = "serve"
DEFAULT_SIGNATURE = "serving_default"
PREDICT_METHOD = "tensorflow/serving/predict"
CLASSIFY_METHOD = "tensorflow/serving/classify"
REGRESS_METHOD = "tensorflow/serving/regress"
WARMUP_FILE = "tf_serving_warmup_requests"
WARMUP_PATH = os.path.join("assets.extra", WARMUP_FILE)  # inside a version folder
MODELS_CONFIG = "models.config"  # in the serving folder, beside the model base paths


def is_version(name: str) -> bool:
    """Whether a folder name is a version (TF Serving: digits only; listings may end names with '/')."""
    return name.rstrip("/").isdigit()


def versions(names: Iterable[str]) -> list[int]:
    """The version numbers among folder `names`, ascending (list the base path with any filesystem)."""
    return sorted(int(name.rstrip("/")) for name in names if is_version(name))


def version_dir(base_path: str, version: int) -> str:
    return os.path.join(base_path, str(version))


def local_versions(base_path: str) -> list[int]:
    """The version folders of a base path on the local disk (none if it does not exist)."""
    return versions(os.listdir(base_path)) if os.path.isdir(base_path) else []
