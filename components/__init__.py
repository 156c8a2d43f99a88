"""TFX-style components: each folder declares a contract (component.py) and does the work (executor.py)."""

import os

# Keras 2 (tf_keras) is this project's Keras: tf.Transform requires it, every model here is built
# with it, and Keras 3 cannot fit under the multi-worker Trainer's strategy on TF 2.16. TensorFlow
# reads this when it is imported; unset, `import tensorflow` also imports Keras 3 whole (with
# pandas), 0.65 s of a 3.6 s import here, in every process that imports TensorFlow (BENCHMARKS.md,
# issue #16). Each top-level package sets it, so it is set before any TensorFlow import: a process
# runs code of one of them first.
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
