"""tf.Transform preprocessing for house prices: z-scores with full-pass analyzers over the train split."""

from __future__ import annotations

import tensorflow as tf
import tensorflow_transform as tft

FEATURE_KEYS = ("area", "bedrooms")
LABEL_KEY = "price"


def make_preprocessing_fn(params: dict):
    del params  # nothing to configure yet

    def preprocessing_fn(inputs):
        outputs = {name: tft.scale_to_z_score(tf.cast(inputs[name], tf.float32)) for name in FEATURE_KEYS}
        if LABEL_KEY in inputs:
            outputs[LABEL_KEY] = tf.cast(inputs[LABEL_KEY], tf.float32)
        return outputs

    return preprocessing_fn
