"""The book's deployment app, as the baseline: Flask, the model loaded once, `model.predict` per request.

The exported SavedModel is wrapped in a one-layer Keras model so the request
path is the book's (`model.predict(batch)` on a Keras model) while the
answers are the same model's."""

from __future__ import annotations

import base64
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402 - after TF_CPP_MIN_LOG_LEVEL is set
import tensorflow as tf  # noqa: E402 - after TF_CPP_MIN_LOG_LEVEL is set
import tf_keras as keras  # noqa: E402 - after TF_CPP_MIN_LOG_LEVEL is set
from flask import Flask, jsonify, request  # noqa: E402 - after TF_CPP_MIN_LOG_LEVEL is set


def keras_model(saved_model_dir: str) -> keras.Model:
    loaded = tf.saved_model.load(saved_model_dir)  # kept alive by the closure: it owns the variables
    images = keras.Input(shape=(), dtype=tf.string, name="image_bytes")
    texts = keras.layers.Lambda(lambda x: loaded.signatures["serving_default"](image_bytes=x)["text"], name="captcha")(
        images
    )
    return keras.Model(images, texts)


def create_app(saved_model_dir: str) -> Flask:
    app = Flask(__name__)
    model = keras_model(saved_model_dir)

    @app.post("/predict")
    def predict():
        data = base64.b64decode(request.get_json()["image"])
        text = model.predict(np.array([data], dtype=object), verbose=0)[0]
        return jsonify({"success": True, "prediction": text.decode()})

    return app


if __name__ == "__main__":
    path, port = sys.argv[1], int(sys.argv[2])
    create_app(path).run(host="127.0.0.1", port=port, threaded=True)
