"""The captcha recognizer: tf.data input, a small CNN with one softmax head per character,
captcha metrics that mean something, and the SavedModel that takes encoded image bytes."""
from __future__ import annotations

import dataclasses
import os

import tensorflow as tf
import tensorflow_transform as tft
import tf_keras as keras

from components.trainer.fn_args import FnArgs
from components.trainer.signatures import CLASSIFY_METHOD, set_method_names
from pipelines.captcha.preprocessing import IMAGE_KEY, LABEL_KEY
from pipelines.training import TrainingConfig, callbacks, distribution_strategy, make_optimizer, plot_curves, write_history

LOSSES = ("sparse_ce", "binary_ce")
ACTIVATIONS = ("relu", "leaky_relu", "elu")


@dataclasses.dataclass(frozen=True)
class CaptchaTrainConfig(TrainingConfig):
    charset: str = "0123456789"
    length: int = 4
    conv_filters: str = "24,48,96"  # one conv block (convs_per_block convs, then a 2x2 pool) per entry
    convs_per_block: int = 1
    batch_norm: bool = False
    dense_units: int = 192
    activation: str = "elu"  # of the conv and dense layers; with relu the network sits at chance for epochs (BENCHMARKS.md)
    epochs: int = 30
    learning_rate: float = 2e-3
    lr_schedule: str = "exponential"
    lr_decay_rate: float = 0.8
    early_stopping_patience: int = 3
    time_budget_minutes: float = 11.0
    loss: str = "sparse_ce"  # sparse_ce: per-position softmax; binary_ce: the book's concatenated sigmoid
    augment: bool = True
    shuffle_buffer: int = 10_000
    cache: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}, got {self.activation!r}")
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {self.loss!r}")
        if not self.filters or any(f <= 0 for f in self.filters):
            raise ValueError(f"conv_filters must be positive integers, got {self.conv_filters!r}")

    @property
    def filters(self) -> list[int]:
        return [int(f) for f in str(self.conv_filters).split(",") if f.strip()]


# --- metrics: a captcha is read when every character is right ---------------------------------
def character_accuracy(y_true, y_pred):
    predicted = tf.argmax(y_pred, axis=-1, output_type=tf.int64)
    return tf.reduce_mean(tf.cast(tf.equal(tf.cast(y_true, tf.int64), predicted), tf.float32))


def full_string_accuracy(y_true, y_pred):
    predicted = tf.argmax(y_pred, axis=-1, output_type=tf.int64)
    right = tf.reduce_all(tf.equal(tf.cast(y_true, tf.int64), predicted), axis=-1)
    return tf.reduce_mean(tf.cast(right, tf.float32))


def binary_ce_on_one_hot(num_classes: int):
    """The book's loss: binary cross-entropy over the concatenated one-hot characters."""
    bce = keras.losses.BinaryCrossentropy()

    def loss(y_true, y_pred):
        return bce(tf.one_hot(tf.cast(y_true, tf.int32), num_classes), y_pred)

    return loss


# --- input pipeline --------------------------------------------------------------------------
def make_dataset(file_pattern: str, feature_spec: dict, config: CaptchaTrainConfig, training: bool) -> tf.data.Dataset:
    files = tf.data.Dataset.list_files(file_pattern, shuffle=training, seed=1)
    records = files.interleave(
        lambda f: tf.data.TFRecordDataset(f, compression_type="GZIP"),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=not training,
    )
    spec = {IMAGE_KEY: feature_spec[IMAGE_KEY], LABEL_KEY: feature_spec[LABEL_KEY]}

    def parse(serialized):
        parsed = tf.io.parse_example(serialized, spec)
        return parsed[IMAGE_KEY], parsed[LABEL_KEY]

    # Parse once, then cache the decoded tensors: later epochs skip gzip and protobuf work.
    dataset = records.batch(256).map(parse, num_parallel_calls=tf.data.AUTOTUNE).unbatch()
    dataset = dataset.filter(lambda image, label: tf.reduce_all(label >= 0))  # labels outside the charset
    if config.cache:
        dataset = dataset.cache()
    if training:
        dataset = dataset.shuffle(config.shuffle_buffer, seed=None, reshuffle_each_iteration=True)
    dataset = dataset.batch(config.batch_size)
    if training and config.augment:
        augment = augmentation()
        dataset = dataset.map(lambda x, y: (augment(x, training=True), y), num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.prefetch(tf.data.AUTOTUNE)


def augmentation() -> keras.Sequential:
    """Small shifts, rotations, zoom and noise: other renderings of the same characters."""
    return keras.Sequential(
        [
            keras.layers.RandomTranslation(0.05, 0.04, fill_mode="constant"),
            keras.layers.RandomRotation(0.01, fill_mode="constant"),
            keras.layers.RandomZoom((-0.05, 0.05), fill_mode="constant"),
            keras.layers.GaussianNoise(0.02),
        ],
        name="augmentation",
    )


# --- the model -------------------------------------------------------------------------------
def activation(config: CaptchaTrainConfig) -> keras.layers.Layer:
    if config.activation == "leaky_relu":
        return keras.layers.LeakyReLU(0.1)
    if config.activation == "elu":
        return keras.layers.ELU()
    return keras.layers.ReLU()


def build_model(input_shape, config: CaptchaTrainConfig) -> keras.Model:
    """conv blocks -> flatten -> dense -> one softmax head per character position."""
    regularizer = keras.regularizers.l2(config.l2) if config.l2 > 0 else None
    num_classes = len(config.charset)
    images = keras.Input(shape=input_shape, name=IMAGE_KEY)
    x = images
    for filters in config.filters:
        for _ in range(config.convs_per_block):
            x = keras.layers.Conv2D(
                filters, 3, padding="same", use_bias=not config.batch_norm, kernel_regularizer=regularizer
            )(x)
            if config.batch_norm:
                x = keras.layers.BatchNormalization()(x)
            x = activation(config)(x)
        x = keras.layers.MaxPool2D()(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dropout(config.dropout)(x)
    x = keras.layers.Dense(config.dense_units, kernel_regularizer=regularizer)(x)
    x = activation(config)(x)
    x = keras.layers.Dropout(config.dropout)(x)
    if config.loss == "binary_ce":
        logits = keras.layers.Dense(config.length * num_classes, activation="sigmoid", name="characters")(x)
    else:
        logits = keras.layers.Dense(config.length * num_classes, name="logits")(x)
    shaped = keras.layers.Reshape((config.length, num_classes))(logits)
    outputs = shaped if config.loss == "binary_ce" else keras.layers.Softmax(axis=-1, name="characters")(shaped)
    return keras.Model(images, outputs, name="captcha_cnn")


def compile_model(model: keras.Model, config: CaptchaTrainConfig, steps_per_epoch: int) -> None:
    loss = (
        binary_ce_on_one_hot(len(config.charset))
        if config.loss == "binary_ce"
        else keras.losses.SparseCategoricalCrossentropy()
    )
    model.compile(
        optimizer=make_optimizer(config, steps_per_epoch),
        loss=loss,
        metrics=[full_string_accuracy, character_accuracy],
    )


# --- export ----------------------------------------------------------------------------------
class CaptchaServingModule(tf.Module):
    """Encoded image bytes in; text, per-character probabilities and confidence out.

    Decoding, grayscale and resizing run through the embedded tf.Transform graph,
    so serving applies exactly the training preprocessing."""

    def __init__(self, model: keras.Model, transform_output: tft.TFTransformOutput, charset: str) -> None:
        super().__init__()
        self.model = model
        self.tft_layer = transform_output.transform_features_layer()
        self.charset = tf.constant(list(charset))
        raw_spec = transform_output.raw_feature_spec()
        self.raw_image_spec = {IMAGE_KEY: raw_spec[IMAGE_KEY]}

    def _outputs(self, raw_images):
        transformed = self.tft_layer({IMAGE_KEY: tf.reshape(raw_images, [-1, 1])})
        probabilities = self.model(transformed[IMAGE_KEY], training=False)
        probabilities = probabilities / tf.reduce_sum(probabilities, axis=-1, keepdims=True)
        best = tf.argmax(probabilities, axis=-1)
        text = tf.strings.reduce_join(tf.gather(self.charset, best), axis=-1)
        confidence = tf.reduce_prod(tf.reduce_max(probabilities, axis=-1), axis=-1)
        return {"text": text, "probabilities": probabilities, "confidence": confidence}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="image_bytes")])
    def serve_image_bytes(self, image_bytes):
        return self._outputs(image_bytes)

    def _from_examples(self, examples):
        parsed = tf.io.parse_example(examples, self.raw_image_spec)
        return self._outputs(tf.reshape(parsed[IMAGE_KEY], [-1]))

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
    def serve_tf_example(self, examples):
        return self._from_examples(examples)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="inputs")])
    def classify(self, inputs):
        """TF Serving's Classify API: serialized tf.Example in; the text as the class, its confidence as the score."""
        outputs = self._from_examples(inputs)
        return {"classes": outputs["text"][:, None], "scores": outputs["confidence"][:, None]}


def export(model: keras.Model, transform_graph_dir: str, charset: str, path: str) -> None:
    module = CaptchaServingModule(model, tft.TFTransformOutput(transform_graph_dir), charset)
    tf.saved_model.save(
        module,
        path,
        signatures={
            "serving_default": module.serve_image_bytes,
            "serving_tf_example": module.serve_tf_example,
            "classify": module.classify,
        },
    )
    set_method_names(path, {"classify": CLASSIFY_METHOD})


# --- run_fn: what the Trainer calls ----------------------------------------------------------
def count_records(file_pattern: str) -> int:
    files = tf.io.gfile.glob(file_pattern)
    return sum(1 for _ in tf.data.TFRecordDataset(files, compression_type="GZIP")) if files else 0


def run_fn(fn_args: FnArgs) -> None:
    config = CaptchaTrainConfig.from_dict(fn_args.config)
    transform_output = tft.TFTransformOutput(fn_args.transform_graph_dir)
    feature_spec = transform_output.transformed_feature_spec()
    image_shape = feature_spec[IMAGE_KEY].shape
    train = make_dataset(fn_args.train_files, feature_spec, config, training=True)
    evaluation = make_dataset(fn_args.eval_files, feature_spec, config, training=False)
    num_train = count_records(fn_args.train_files)
    if num_train == 0:
        raise ValueError("no training examples")
    steps_per_epoch = -(-num_train // config.batch_size)
    with distribution_strategy(config).scope():
        model = build_model(image_shape, config)
        compile_model(model, config, steps_per_epoch)
    history = model.fit(
        train,
        validation_data=evaluation,
        epochs=config.epochs,
        callbacks=callbacks(config, fn_args.log_dir),
        verbose=0,
    )
    write_history(history.history, fn_args.history_path)
    plot_curves(
        history.history,
        fn_args.curves_path,
        ["full_string_accuracy", "character_accuracy"],
        f"{fn_args.model_name}: train vs validation",
    )
    export(model, fn_args.transform_graph_dir, config.charset, fn_args.serving_model_dir)
