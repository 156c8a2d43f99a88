"""Running the pipelines beyond one process: a Flink session cluster, two-host training, a shared MariaDB."""

import os

# Keras 2, set before any TensorFlow import: components/__init__.py says why.
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
