"""SavedModels this repository did not train, written the ways users write them: a plain
tf.Module with `tf.saved_model.save`, Keras 3's and tf_keras' `model.export`, and a TF1 graph
saved with `tf.compat.v1.saved_model.Builder` with predict, classify and regress signatures.
Each computes something a test can check by hand."""

from __future__ import annotations

import os

import numpy as np
import tensorflow as tf

WEIGHTS = np.array([[1.0, -1.0], [2.0, 0.5], [0.0, 3.0]], np.float32)  # [3 features, 2 outputs]
BIAS = np.array([0.5, -0.25], np.float32)


def expected_dense(features: np.ndarray) -> np.ndarray:
    return features @ WEIGHTS + BIAS


def write_module(path: str) -> None:
    """tf.saved_model.save: `x` [None] float -> `y` = 3x + 1 and `doubled` = 2x."""

    class Affine(tf.Module):
        def __init__(self):
            super().__init__()
            self.scale = tf.Variable(3.0)

        @tf.function(input_signature=[tf.TensorSpec([None], tf.float32, name="x")])
        def __call__(self, x):
            return {"y": self.scale * x + 1.0, "doubled": 2.0 * x}

    module = Affine()
    tf.saved_model.save(module, path, signatures={"serving_default": module.__call__})


def write_keras3(path: str) -> None:
    import keras

    inputs = keras.Input(shape=(3,), name="features")
    dense = keras.layers.Dense(2, name="dense")
    model = keras.Model(inputs, dense(inputs))
    dense.set_weights([WEIGHTS, BIAS])
    model.export(path)


def write_tf_keras(path: str) -> None:
    import tf_keras

    inputs = tf_keras.Input(shape=(3,), name="features")
    dense = tf_keras.layers.Dense(2, name="dense")
    model = tf_keras.Model(inputs, dense(inputs))
    dense.set_weights([WEIGHTS, BIAS])
    model.export(path)


def write_tf1(path: str) -> None:
    """A TF1 graph: serialized tf.Example with float `x` -> classify (two classes "low"/"high",
    scores sigmoid(x) based) and regress (4x - 2); a predict signature on a raw `x` tensor."""
    v1 = tf.compat.v1
    with tf.Graph().as_default():
        serialized = v1.placeholder(tf.string, [None], name="tf_example")
        x_from_examples = tf.io.parse_example(serialized, {"x": tf.io.FixedLenFeature([1], tf.float32)})["x"]
        raw_x = v1.placeholder(tf.float32, [None, 1], name="x")
        slope = v1.Variable(4.0, name="slope")

        def regress(x):
            return slope * x - 2.0

        def scores(x):
            high = tf.sigmoid(x)
            return tf.concat([1.0 - high, high], axis=1)

        batch = tf.shape(x_from_examples)[0]
        classes = tf.tile(tf.constant([["low", "high"]]), [batch, 1])
        signatures = {
            "serving_default": v1.saved_model.predict_signature_def({"x": raw_x}, {"y": regress(raw_x)}),
            "classify_x": v1.saved_model.classification_signature_def(serialized, classes, scores(x_from_examples)),
            "regress_x": v1.saved_model.regression_signature_def(serialized, regress(x_from_examples)),
        }
        with v1.Session() as session:
            session.run(v1.global_variables_initializer())
            builder = v1.saved_model.Builder(path)
            builder.add_meta_graph_and_variables(session, ["serve"], signature_def_map=signatures)
            builder.save()


WRITERS = {"module": write_module, "keras3": write_keras3, "tf_keras": write_tf_keras, "tf1": write_tf1}


def write_all(base: str) -> str:
    """Version 1 of each model under `base`, and a models.config naming them all."""
    entries = []
    for name, write in WRITERS.items():
        write(os.path.join(base, name, "1"))
        entries.append(
            f'  config {{ name: "{name}" base_path: "{os.path.join(base, name)}" model_platform: "tensorflow" }}'
        )
    config = os.path.join(base, "models.config")
    with open(config, "w") as f:
        f.write("model_config_list {\n" + "\n".join(entries) + "\n}\n")
    return config


if __name__ == "__main__":  # the tests write them in a child process: Keras 3 and TF1 graphs stay out of pytest's
    import sys

    write_all(sys.argv[1])
