"""The book's two MNIST models, softmax regression and a CNN, and the SavedModel every
TensorFlow Serving client expects of MNIST.

Signatures of the export:
- `serving_default`: `image_bytes` (PNG/JPEG/GIF/BMP, any size, colour or grey, either polarity)
  -> `class` (int64), `probabilities` [10];
- `predict_images`: `images` float [None, 784] in [0, 1] -> `scores` [None, 10], as TensorFlow
  Serving's MNIST tutorial (mnist_saved_model.py) exports it, so its mnist_client.py works unchanged;
- `classify` (method tensorflow/serving/classify): serialized tf.Example with `image` (encoded bytes)
  or `x` (784 floats, the tutorial's feature) -> the ten digits as `classes`, best first, with `scores`.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf
import tensorflow_transform as tft
import tf_keras as keras

from components.trainer.fn_args import FnArgs
from components.trainer.signatures import CLASSIFY_METHOD, set_method_names
from pipelines.mnist.preprocessing import DIGITS, IMAGE_KEY, LABEL_KEY, SIZE, frame_digit, frame_pixels
from pipelines.mnist.train_config import MnistTrainConfig
from pipelines.training import (
    augment,
    callbacks,
    distribution_strategy,
    input_options,
    make_optimizer,
    on_a_nonempty_batch,
    record_training,
)

PIXELS = SIZE * SIZE


def build_model(config: MnistTrainConfig) -> keras.Model:
    """[batch, 28, 28, 1] framed ink -> 10 probabilities."""
    regularizer = keras.regularizers.l2(config.l2) if config.l2 > 0 else None
    images = keras.Input(shape=(SIZE, SIZE, 1), name=IMAGE_KEY)
    x = images
    if config.model == "cnn":
        for filters in config.filters:
            x = keras.layers.Conv2D(filters, 5, padding="same", activation="relu", kernel_regularizer=regularizer)(x)
            x = keras.layers.MaxPool2D()(x)
        x = keras.layers.Flatten()(x)
        x = keras.layers.Dense(config.dense_units, activation="relu", kernel_regularizer=regularizer)(x)
        x = keras.layers.Dropout(config.dropout)(x)
    else:
        x = keras.layers.Flatten()(x)
    probabilities = keras.layers.Dense(10, activation="softmax", kernel_regularizer=regularizer, name="digit")(x)
    return keras.Model(images, probabilities, name=f"mnist_{config.model}")


def load_arrays(file_pattern: str, feature_spec: dict) -> tuple[np.ndarray, np.ndarray]:
    """A transformed split as arrays (MNIST fits in memory: 60,000 x 784 floats is 188 MB);
    examples whose label is not a digit are dropped."""
    files = tf.io.gfile.glob(file_pattern)
    if not files:
        raise ValueError(f"no examples match {file_pattern}")
    spec = {IMAGE_KEY: feature_spec[IMAGE_KEY], LABEL_KEY: feature_spec[LABEL_KEY]}
    images, labels = [], []
    for batch in tf.data.TFRecordDataset(files, compression_type="GZIP").batch(1024):
        parsed = tf.io.parse_example(batch, spec)
        images.append(parsed[IMAGE_KEY].numpy().reshape(-1, SIZE, SIZE, 1))
        labels.append(parsed[LABEL_KEY].numpy().reshape(-1))
    x, y = np.concatenate(images), np.concatenate(labels)
    keep = y >= 0
    return x[keep], y[keep]


def make_dataset(x: np.ndarray, y: np.ndarray, config: MnistTrainConfig, training: bool) -> tf.data.Dataset:
    dataset = tf.data.Dataset.from_tensor_slices((x, y))
    if training:
        dataset = dataset.shuffle(len(y), reshuffle_each_iteration=True)
    dataset = dataset.batch(config.batch_size)
    if training and config.augment:
        dataset = dataset.map(
            lambda images, labels: (
                tf.clip_by_value(augment(images, shift=(0.08, 0.08), max_degrees=10, zoom=0.08), 0.0, 1.0),
                labels,
            )
        )
    return dataset.prefetch(2).with_options(input_options())


class MnistServingModule(tf.Module):
    def __init__(self, model: keras.Model, transform_output: tft.TFTransformOutput) -> None:
        super().__init__()
        self.model = model
        self.tft_layer = transform_output.transform_features_layer()
        self.digits = tf.constant(list(DIGITS))

    def _images_from_bytes(self, image_bytes):
        return self.tft_layer({IMAGE_KEY: tf.reshape(image_bytes, [-1, 1])})[IMAGE_KEY]

    def _probabilities(self, framed):
        images = tf.reshape(framed, [-1, SIZE, SIZE, 1])
        return on_a_nonempty_batch(lambda batch: self.model(batch, training=False), images)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="image_bytes")])
    def serve_image_bytes(self, image_bytes):
        probabilities = self._probabilities(self._images_from_bytes(image_bytes))
        return {"class": tf.argmax(probabilities, axis=-1), "probabilities": probabilities}

    @tf.function(input_signature=[tf.TensorSpec([None, PIXELS], tf.float32, name="images")])
    def predict_images(self, images):
        return {"scores": self._probabilities(frame_pixels(images))}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="inputs")])
    def classify(self, inputs):
        """TF Serving's Classify API. Each tf.Example holds `image` (encoded bytes) or `x` (784 floats)."""
        parsed = tf.io.parse_example(
            inputs,
            {
                IMAGE_KEY: tf.io.FixedLenFeature([], tf.string, default_value=""),
                "x": tf.io.FixedLenFeature([PIXELS], tf.float32, default_value=[0.0] * PIXELS),
            },
        )
        pixels = tf.reshape(tf.clip_by_value(parsed["x"], 0.0, 1.0), [-1, SIZE, SIZE, 1])

        def one(item):
            data, square = item
            return tf.cond(
                tf.strings.length(data) > 0,
                lambda: self._images_from_bytes(data[None])[0],
                lambda: frame_digit(square),
            )

        framed = tf.map_fn(
            one, (parsed[IMAGE_KEY], pixels), fn_output_signature=tf.TensorSpec([SIZE, SIZE, 1], tf.float32)
        )
        scores, indices = tf.math.top_k(self._probabilities(framed), k=10)
        return {"classes": tf.gather(self.digits, indices), "scores": scores}


def export(model: keras.Model, transform_graph_dir: str, path: str) -> None:
    module = MnistServingModule(model, tft.TFTransformOutput(transform_graph_dir))
    tf.saved_model.save(
        module,
        path,
        signatures={
            "serving_default": module.serve_image_bytes,
            "predict_images": module.predict_images,
            "classify": module.classify,
        },
    )
    set_method_names(path, {"classify": CLASSIFY_METHOD})


def run_fn(fn_args: FnArgs) -> None:
    config = MnistTrainConfig.from_dict(fn_args.config)
    feature_spec = tft.TFTransformOutput(fn_args.transform_graph_dir).transformed_feature_spec()
    train_x, train_y = load_arrays(fn_args.train_files, feature_spec)
    eval_x, eval_y = load_arrays(fn_args.eval_files, feature_spec)
    if not len(train_y):
        raise ValueError("no training examples")
    steps_per_epoch = -(-len(train_y) // config.batch_size)
    with distribution_strategy(config).scope():
        model = build_model(config)
        model.compile(
            optimizer=make_optimizer(config, steps_per_epoch),
            loss=keras.losses.SparseCategoricalCrossentropy(),
            metrics=["accuracy"],
        )
    used = callbacks(config, fn_args.log_dir)
    history = model.fit(
        make_dataset(train_x, train_y, config, training=True),
        validation_data=make_dataset(eval_x, eval_y, config, training=False) if len(eval_y) else None,
        epochs=config.epochs,
        callbacks=used,
        verbose=0,
    )
    record_training(
        used, history.history, fn_args, ["accuracy"], f"{fn_args.model_name} ({config.model}): train vs validation"
    )
    export(model, fn_args.transform_graph_dir, fn_args.serving_model_dir)
