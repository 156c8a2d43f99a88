"""Running the pipelines beyond one process: a Flink session cluster, two-host training, a shared MariaDB."""

import os

os.environ.setdefault(
    "TF_USE_LEGACY_KERAS", "1"
)  # Keras 2, set before any TensorFlow import: see components/__init__.py
