"""The captcha recognizer: tf.data input, a small CNN with one softmax head per character,
captcha metrics that mean something, and the SavedModel that takes encoded image bytes."""

from __future__ import annotations

import functools
import json
import os
import sys
import time
from collections.abc import Sequence

import numpy as np
import tensorflow as tf
import tensorflow_transform as tft
import tf_keras as keras

from components.base import fileio
from components.evaluator import calibration
from components.trainer.fn_args import FnArgs
from components.trainer.signatures import CLASSIFY_METHOD, set_method_names
from pipelines.captcha.preprocessing import IMAGE_KEY, LABEL_KEY
from pipelines.captcha.train_config import FIRST_CONV_PATHS, CaptchaTrainConfig
from pipelines.training import (
    augment,
    callbacks,
    distribution_strategy,
    fit_time_budget,
    input_options,
    make_optimizer,
    on_a_nonempty_batch,
    record_training,
    until_deadline,
)


# --- metrics: a captcha is read when every character is right ---------------------------------
def character_accuracy(y_true, y_pred):
    predicted = tf.argmax(y_pred, axis=-1, output_type=tf.int64)
    return tf.reduce_mean(tf.cast(tf.equal(tf.cast(y_true, tf.int64), predicted), tf.float32))


def full_string_accuracy(y_true, y_pred):
    predicted = tf.argmax(y_pred, axis=-1, output_type=tf.int64)
    right = tf.reduce_all(tf.equal(tf.cast(y_true, tf.int64), predicted), axis=-1)
    return tf.reduce_mean(tf.cast(right, tf.float32))


class CaptchaLoss(keras.losses.Loss):
    """[batch, length] character ids and [batch, length, classes] outputs -> a loss per character:
    a softmax cross-entropy per position (sparse_ce) or the book's binary cross-entropy over the
    one-hot characters (binary_ce), each against targets smoothed by `label_smoothing`.

    A Loss subclass, not a closure over a Loss object: Keras reduces it over the batch itself,
    which a distribution strategy (multi_worker) requires."""

    def __init__(
        self, num_classes: int, binary: bool = False, label_smoothing: float = 0.0, name: str = "captcha_loss"
    ):
        super().__init__(name=name)
        self.num_classes, self.binary, self.label_smoothing = num_classes, binary, label_smoothing

    def call(self, y_true, y_pred):
        one_hot = tf.one_hot(tf.cast(y_true, tf.int32), self.num_classes)
        loss = keras.losses.binary_crossentropy if self.binary else keras.losses.categorical_crossentropy
        return loss(one_hot, y_pred, label_smoothing=self.label_smoothing)

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "num_classes": self.num_classes,
            "binary": self.binary,
            "label_smoothing": self.label_smoothing,
        }


def captcha_loss(config: CaptchaTrainConfig) -> CaptchaLoss:
    return CaptchaLoss(len(config.charset), config.loss == "binary_ce", config.label_smoothing)


# --- input pipeline --------------------------------------------------------------------------
def make_dataset(file_pattern: str, feature_spec: dict, config: CaptchaTrainConfig, training: bool) -> tf.data.Dataset:
    # Fixed parallelism, not AUTOTUNE (autotuning off: pipelines.training.input_options says why).
    # The pipeline is small; one call per core does.
    # The interleave's cycle length is set too: by default it is the cores this process may use,
    # and a parallelism above it is refused (one core, e.g. `taskset -c 0` or a one-CPU container,
    # failed every Trainer with "num_parallel_calls is 2 and cycle_length is 1").
    parallel = max(2, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 2)
    # Several workers each read every record and keep their share of each global batch
    # (AutoShardPolicy.DATA): they must see the records in the same order.
    multi_worker = config.distribution == "multi_worker"
    files = tf.data.Dataset.list_files(file_pattern, shuffle=training, seed=1)
    records = files.interleave(
        lambda f: tf.data.TFRecordDataset(f, compression_type="GZIP"),
        cycle_length=parallel,
        num_parallel_calls=parallel,
        deterministic=not training or multi_worker,
    )
    spec = {IMAGE_KEY: feature_spec[IMAGE_KEY], LABEL_KEY: feature_spec[LABEL_KEY]}

    def parse(serialized):
        parsed = tf.io.parse_example(serialized, spec)
        return parsed[IMAGE_KEY], parsed[LABEL_KEY]

    # Parse once, then cache the decoded tensors: later epochs skip gzip and protobuf work.
    dataset = records.batch(256).map(parse, num_parallel_calls=parallel).unbatch()
    dataset = dataset.filter(lambda image, label: tf.reduce_all(label >= 0))  # labels outside the charset
    if config.cache:
        dataset = dataset.cache()
    if training:
        dataset = dataset.shuffle(
            config.shuffle_buffer, seed=1 if multi_worker else None, reshuffle_each_iteration=True
        )
    dataset = dataset.batch(config.batch_size)
    if training and config.augment:
        shear, stretch, zoom = config.augment_shear, config.augment_stretch, config.augment_zoom
        augmented = functools.partial(augment, zoom=zoom, shear=shear, stretch=stretch)
        if config.augment_minutes is not None:
            # The same clock the time-annealed rate falls by (lr_start, or now: training starts next).
            start = config.lr_start or time.time()
            augmented = until_deadline(augmented, start + config.augment_minutes * 60)
        dataset = dataset.map(lambda x, y: (augmented(x), y), num_parallel_calls=parallel)
    options = input_options()
    if multi_worker:
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.prefetch(2).with_options(options)


def normalize_contrast(images: tf.Tensor) -> tf.Tensor:
    """[batch, height, width, channels] -> the same, each image's faintest pixel at 0 and its
    strongest at 1; stretched 20 times at most, so a nearly flat image is not blown up into noise."""
    low = tf.reduce_min(images, axis=[1, 2, 3], keepdims=True)
    high = tf.reduce_max(images, axis=[1, 2, 3], keepdims=True)
    return (images - low) / tf.maximum(high - low, 0.05)


def page_to_zero(images: tf.Tensor) -> tf.Tensor:
    """[batch, height, width, channels] in [0, 1], ink high (as decode_images gives it) -> the
    same, every image whose median pixel is above 0.5 inverted. Most of a captcha is its page,
    so that is one whose page is brighter than its ink once decoded: light text on a dark page.
    The median, not the border: a dark frame around a captcha would turn its border to ink."""
    # More than half the pixels above 0.5 is the median above it, without a sort (a sort cost
    # 12 ms per batch of 32 here, a third of the whole model's time).
    bright = tf.reduce_mean(tf.cast(images > 0.5, tf.float32), axis=[1, 2, 3]) > 0.5
    return tf.where(bright[:, None, None, None], 1.0 - images, images)


# --- the model -------------------------------------------------------------------------------
def activation(config: CaptchaTrainConfig) -> keras.layers.Layer:
    if config.activation == "leaky_relu":
        return keras.layers.LeakyReLU(0.1)
    if config.activation == "elu":
        return keras.layers.ELU()
    return keras.layers.ReLU()


def dense_heads(features, config: CaptchaTrainConfig, regularizer) -> tf.Tensor:
    """flatten -> dense -> [batch, length, classes] logits, one block of the last layer per position."""
    num_classes = len(config.charset)
    x = keras.layers.Flatten()(features)
    x = keras.layers.Dropout(config.dropout)(x)
    x = keras.layers.Dense(config.dense_units, kernel_regularizer=regularizer)(x)
    x = activation(config)(x)
    x = keras.layers.Dropout(config.dropout)(x)
    logits = keras.layers.Dense(config.length * num_classes, name="logits")(x)
    return keras.layers.Reshape((config.length, num_classes))(logits)


def sequence_heads(features, config: CaptchaTrainConfig, regularizer) -> tf.Tensor:
    """Columns of the conv features -> bidirectional GRU -> per position, attention over the
    columns -> [batch, length, classes] logits.

    The dense heads tie position k to a region of the image, and when the spacing varies
    they read a neighbour (5168 read as 5188). Here the GRU tells every column how many
    characters lie to its left and right, and head k weights the columns by its own scores."""
    _, height, width, channels = features.shape
    columns = keras.layers.Permute((2, 1, 3))(features)  # [batch, width, height, channels]
    columns = keras.layers.Reshape((width, height * channels))(columns)
    columns = keras.layers.Dense(config.dense_units, kernel_regularizer=regularizer)(columns)
    columns = activation(config)(columns)
    # Unrolled: a dozen steps at most, and the served graph then has no while loop (1 ms less per call here).
    sequence = columns
    for _ in range(config.rnn_layers):
        gru = keras.layers.GRU(config.rnn_units, return_sequences=True, unroll=True)
        sequence = keras.layers.Bidirectional(gru)(sequence)
    scores = keras.layers.Dense(config.length, name="position_scores")(sequence)  # [batch, width, length]
    weights = keras.layers.Softmax(axis=1, name="position_attention")(scores)  # over the columns
    pooled = keras.layers.Dot(axes=(1, 1))([weights, sequence])  # [batch, length, 2 * rnn_units]
    pooled = keras.layers.Dropout(config.dropout)(pooled)
    return keras.layers.Dense(len(config.charset), name="logits")(pooled)


def one_channel_conv(images: tf.Tensor, kernel: tf.Tensor, path: str) -> tf.Tensor:
    """A 3x3 "same" convolution of [batch, height, width, 1] images with a [3, 3, 1, filters] kernel,
    computed by `path`: "conv2d", TensorFlow's (oneDNN's) convolution, or "shifted", nine shifted
    copies of the image side by side and one matrix product. The same function either way."""
    if path == "conv2d":
        return tf.nn.conv2d(images, kernel, strides=1, padding="SAME")
    height, width = tf.shape(images)[1], tf.shape(images)[2]
    padded = tf.pad(images, [[0, 0], [1, 1], [1, 1], [0, 0]])
    # Channel 3 * dy + dx holds the pixel at (y + dy - 1, x + dx - 1): the kernel's row-major order.
    views = tf.concat([padded[:, dy : dy + height, dx : dx + width, :] for dy in range(3) for dx in range(3)], -1)
    filters = kernel.shape[-1]
    product = tf.matmul(tf.reshape(views, [-1, 9]), tf.reshape(kernel, [9, filters]))
    return tf.reshape(product, [-1, height, width, filters])


@functools.lru_cache(maxsize=None)
def time_first_conv(batch: int, height: int, width: int, filters: int, rounds: int = 7) -> dict[str, float]:
    """Milliseconds one training step of the first convolution takes on this machine by each path of
    `one_channel_conv`: the forward pass and the gradients of its kernel and bias, on random images of
    the model's input shape. The paths take turns, `rounds` times; the median of each is returned.
    Once per process and shape (about half a second at the default's 64 x 40 x 108)."""
    rng = np.random.default_rng(14)  # constants, not a tf.random.Generator: no variable under a strategy's scope
    images = tf.constant(rng.random((batch, height, width, 1)), tf.float32)
    kernel = tf.constant(rng.normal(0, 0.3, (3, 3, 1, filters)), tf.float32)
    bias = tf.zeros((filters,))
    upstream = tf.constant(rng.normal(size=(batch, height, width, filters)), tf.float32)  # from the layers above

    def step_of(path: str):
        @tf.function
        def step():
            with tf.GradientTape() as tape:
                tape.watch([kernel, bias])
                out = tf.nn.bias_add(one_channel_conv(images, kernel, path), bias)
                loss = tf.reduce_sum(out * upstream)
            return tape.gradient(loss, [kernel, bias])

        return step

    steps = {path: step_of(path) for path in FIRST_CONV_PATHS}
    for step in steps.values():  # trace and warm up
        step(), step()
    times: dict[str, list[float]] = {path: [] for path in steps}
    for _ in range(rounds):
        for path, step in steps.items():
            started = time.perf_counter()
            step()[0].numpy()
            times[path].append((time.perf_counter() - started) * 1000)
    return {path: float(np.median(values)) for path, values in times.items()}


def first_conv_path(config: CaptchaTrainConfig, input_shape) -> tuple[str, dict[str, float] | None]:
    """How the first convolution trains here: config.first_conv, or for "auto" the path that
    `time_first_conv` finds quicker on this machine (with the timings). Neither is the quicker
    everywhere: on an AVX2-only EPYC the shifted copies trained the whole model 1.1-1.45 times as
    fast, on an AVX-512 Xeon oneDNN's convolution 1.25 times (BENCHMARKS.md, issue #14)."""
    if config.first_conv != "auto":
        return config.first_conv, None
    if input_shape[-1] != 1:  # no one-channel convolution in this model
        return "conv2d", None
    height, width = int(input_shape[0]), int(input_shape[1])
    times = time_first_conv(config.batch_size, height, width, config.filters[0])
    return min(times, key=times.__getitem__), times


class OneChannelConv(keras.layers.Layer):
    """Conv2D(filters, 3, padding="same") of a one-channel image, with the same kernel shape and
    initialisation. While training it is computed by `training_path` (`one_channel_conv`): oneDNN's
    convolution of a single input channel, its kernel's gradient above all, was a fifth of the whole
    training step on an AVX2-only CPU, where nine shifted copies and one product took about two thirds
    of its time; on an AVX-512 CPU the convolution is the quicker. A forward pass alone (evaluation,
    the exported model) always runs oneDNN's convolution, the quicker one for it on both
    (BENCHMARKS.md, issue #14)."""

    def __init__(
        self, filters: int, use_bias: bool = True, kernel_regularizer=None, training_path: str = "shifted", **kwargs
    ):
        super().__init__(**kwargs)
        if training_path not in FIRST_CONV_PATHS:
            raise ValueError(f"training_path must be one of {FIRST_CONV_PATHS}, got {training_path!r}")
        self.filters, self.use_bias, self.training_path = filters, use_bias, training_path
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)

    def build(self, input_shape):
        if input_shape[-1] != 1:
            raise ValueError(f"OneChannelConv reads one channel, got input shape {input_shape}")
        # Conv2D's kernel shape, so the default initialiser draws from the same range (its fans count the 3x3 window).
        self.kernel = self.add_weight(
            name="kernel",
            shape=(3, 3, 1, self.filters),
            initializer="glorot_uniform",
            regularizer=self.kernel_regularizer,
        )
        self.bias = self.add_weight(name="bias", shape=(self.filters,), initializer="zeros") if self.use_bias else None
        super().build(input_shape)

    def call(self, images, training=None):
        out = one_channel_conv(images, self.kernel, self.training_path if training else "conv2d")
        return tf.nn.bias_add(out, self.bias) if self.bias is not None else out

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.filters)

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "filters": self.filters,
            "use_bias": self.use_bias,
            "kernel_regularizer": keras.regularizers.serialize(self.kernel_regularizer),
            "training_path": self.training_path,
        }


def conv_blocks(x, config: CaptchaTrainConfig, regularizer, first_conv: str) -> tf.Tensor:
    """Per entry of config.filters: convs_per_block 3x3 convolutions, each followed by the activation
    (batch normalisation between, when asked for), then a 2x2 max-pool.

    The block's last activation is applied after the pool: every activation here (ReLU, leaky ReLU,
    ELU) never decreases, so it commutes with a max, and the block computes the same function on a
    quarter of the values. A one-channel input's convolution is a OneChannelConv that trains by the
    `first_conv` path."""
    use_bias = not config.batch_norm  # a normalisation after the convolution has its own offset
    for filters in config.filters:
        for index in range(config.convs_per_block):
            if x.shape[-1] == 1:
                conv = OneChannelConv(
                    filters, use_bias=use_bias, kernel_regularizer=regularizer, training_path=first_conv
                )
            else:
                conv = keras.layers.Conv2D(
                    filters, 3, padding="same", use_bias=use_bias, kernel_regularizer=regularizer
                )
            x = conv(x)
            if config.batch_norm:
                x = keras.layers.BatchNormalization()(x)
            if index < config.convs_per_block - 1:
                x = activation(config)(x)
        x = activation(config)(keras.layers.MaxPool2D()(x))
    return x


def build_model(input_shape, config: CaptchaTrainConfig) -> keras.Model:
    """conv blocks -> dense or sequence heads -> one softmax per character position."""
    regularizer = keras.regularizers.l2(config.l2) if config.l2 > 0 else None
    images = keras.Input(shape=input_shape, name=IMAGE_KEY)
    x = normalize_contrast(images) if config.normalize_contrast else images
    x = page_to_zero(x) if config.either_polarity else x
    x = conv_blocks(x, config, regularizer, first_conv_path(config, input_shape)[0])
    logits = (sequence_heads if config.heads == "sequence" else dense_heads)(x, config, regularizer)
    if config.loss == "binary_ce":  # the book's: independent sigmoids over the concatenated one-hots
        outputs = keras.layers.Activation("sigmoid", name="characters")(logits)
    else:
        outputs = keras.layers.Softmax(axis=-1, name="characters")(logits)
    return keras.Model(images, outputs, name="captcha_cnn")


def compile_model(model: keras.Model, config: CaptchaTrainConfig, steps_per_epoch: int) -> None:
    model.compile(
        optimizer=make_optimizer(config, steps_per_epoch),
        loss=captcha_loss(config),
        metrics=[full_string_accuracy, character_accuracy],
    )


# --- test-time views --------------------------------------------------------------------------
def shift_columns(images: tf.Tensor, shift: int) -> tf.Tensor:
    """[batch, height, width, channels] -> the same, the content moved `shift` columns right (left when
    negative), the edge column repeated into the space it leaves: a page stays a page either polarity."""
    if shift == 0:
        return images
    batch = tf.shape(images)[0]
    transform = tf.constant([1.0, 0.0, -float(shift), 0.0, 1.0, 0.0, 0.0, 0.0])  # output x reads input x - shift
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=images,
        transforms=tf.tile(transform[None], [batch, 1]),
        output_shape=tf.shape(images)[1:3],
        fill_value=0.0,
        interpolation="NEAREST",
        fill_mode="NEAREST",
    )


def view_probabilities(model: keras.Model, images: tf.Tensor, shifts: Sequence[int]) -> tf.Tensor:
    """The model's [batch, length, classes] probabilities for `images` read at each of `shifts` (one
    call over all the views), combined as their normalised geometric mean: a position's answer is the
    character the views agree on most, in log-probability."""
    probabilities = model(tf.concat([shift_columns(images, s) for s in shifts], axis=0), training=False)
    if len(shifts) == 1:
        return probabilities / tf.reduce_sum(probabilities, axis=-1, keepdims=True)
    views = tf.reshape(probabilities, tf.concat([[len(shifts), -1], tf.shape(probabilities)[1:]], axis=0))
    return tf.nn.softmax(tf.reduce_mean(tf.math.log(tf.maximum(views, 1e-7)), axis=0), axis=-1)


# --- export ----------------------------------------------------------------------------------
class CaptchaServingModule(tf.Module):
    """Encoded image bytes in; text, per-character probabilities, confidence and accepted out.

    Decoding, grayscale and resizing run through the embedded tf.Transform graph,
    so serving applies exactly the training preprocessing. The model reads each image at
    the config's test-time shifts (view_probabilities). The probabilities are
    calibrated with the temperature fitted on the eval split; `accepted` is
    confidence >= reject_below, the threshold chosen there (calibration.json)."""

    def __init__(
        self,
        model: keras.Model,
        transform_output: tft.TFTransformOutput,
        charset: str,
        temperature: float = 1.0,
        reject_below: float = 0.0,
        shifts: Sequence[int] = (0,),
    ) -> None:
        super().__init__()
        self.model = model
        self.shifts = tuple(shifts)
        self.tft_layer = transform_output.transform_features_layer()
        self.charset = tf.constant(list(charset))
        self.temperature = tf.constant(temperature, tf.float32)
        self.reject_below = tf.constant(reject_below, tf.float32)
        raw_spec = transform_output.raw_feature_spec()
        self.raw_image_spec = {IMAGE_KEY: raw_spec[IMAGE_KEY]}

    def _outputs(self, raw_images):
        transformed = self.tft_layer({IMAGE_KEY: tf.reshape(raw_images, [-1, 1])})
        probabilities = on_a_nonempty_batch(
            lambda images: view_probabilities(self.model, images, self.shifts), transformed[IMAGE_KEY]
        )
        probabilities = tf.nn.softmax(tf.math.log(tf.maximum(probabilities, 1e-7)) / self.temperature, axis=-1)
        best = tf.argmax(probabilities, axis=-1)
        text = tf.strings.reduce_join(tf.gather(self.charset, best), axis=-1)
        confidence = tf.reduce_prod(tf.reduce_max(probabilities, axis=-1), axis=-1)
        return {
            "text": text,
            "probabilities": probabilities,
            "confidence": confidence,
            "accepted": confidence >= self.reject_below,
        }

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


def export(
    model: keras.Model,
    transform_graph_dir: str,
    charset: str,
    path: str,
    temperature: float = 1.0,
    reject_below: float = 0.0,
    shifts: Sequence[int] = (0,),
) -> None:
    module = CaptchaServingModule(
        model, tft.TFTransformOutput(transform_graph_dir), charset, temperature, reject_below, shifts
    )
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


# --- calibration -----------------------------------------------------------------------------
CALIBRATION_FILE = "calibration.json"


def calibrate(
    model: keras.Model,
    dataset: tf.data.Dataset,
    accepted_precision: float,
    shifts: Sequence[int] = (0,),
    level: float = 0.95,
) -> dict:
    """Fit the temperature and the reject_below threshold on `dataset` (the eval split), on the
    probabilities the export will serve (the views at `shifts` combined)."""
    probabilities, labels = [], []
    for images, truth in dataset:
        probabilities.append(view_probabilities(model, images, shifts).numpy())
        labels.append(truth.numpy())
    p, y = np.concatenate(probabilities), np.concatenate(labels).astype(np.int64)
    temperature = calibration.fit_temperature(p, y)
    calibrated = calibration.apply_temperature(p, temperature)
    right = (calibrated.argmax(-1) == y).all(-1)
    before = calibration.reliability(p.max(-1).prod(-1), right)["ece"]
    confidence = calibrated.max(-1).prod(-1)
    reject_below = calibration.reject_threshold(confidence, right, accepted_precision, level=level)
    accepted = confidence >= reject_below
    return {
        "temperature": temperature,
        "reject_below": reject_below,
        "accepted_precision_target": accepted_precision,
        "accepted_precision_level": level,
        "eval_examples": int(len(y)),
        "eval_nll_before": calibration.negative_log_likelihood(p, y, 1.0),
        "eval_nll_after": calibration.negative_log_likelihood(p, y, temperature),
        "eval_ece_before": before,
        "eval_ece_after": calibration.reliability(confidence, right)["ece"],
        "eval_accepted_share": float(accepted.mean()),
        "eval_accepted_precision": float(right[accepted].mean()) if accepted.any() else None,
        "eval_accepted_precision_lower_bound": (
            float(calibration.precision_lower_bound(right[accepted].sum(), accepted.sum(), level))
            if accepted.any()
            else None
        ),
    }


def calibrate_and_export(
    model: keras.Model, evaluation: tf.data.Dataset, config: CaptchaTrainConfig, transform_graph_dir: str, path: str
) -> dict:
    """The Trainer's last two steps: fit the temperature and reject_below on `evaluation` (the eval
    split) and export the model to `path` with them; returns what `calibrate` fitted."""
    fitted = calibrate(model, evaluation, config.accepted_precision, config.shifts, config.accepted_precision_level)
    export(
        model, transform_graph_dir, config.charset, path, fitted["temperature"], fitted["reject_below"], config.shifts
    )
    return fitted


# --- run_fn: what the Trainer calls ----------------------------------------------------------
def count_records(file_pattern: str) -> int:
    files = tf.io.gfile.glob(file_pattern)
    return sum(1 for _ in tf.data.TFRecordDataset(files, compression_type="GZIP")) if files else 0


def run_fn(fn_args: FnArgs) -> None:
    config = fit_time_budget(CaptchaTrainConfig.from_dict(fn_args.config), fn_args.seconds_left)
    if config.augment and config.augment_minutes is not None:
        print(
            f"  augmentation for the first {config.augment_minutes:.1f} min of "
            f"{config.time_budget_minutes:.1f} (augment_until {config.augment_until:g}), then the images as rendered",
            file=sys.stderr,
            flush=True,
        )
    transform_output = tft.TFTransformOutput(fn_args.transform_graph_dir)
    feature_spec = transform_output.transformed_feature_spec()
    image_shape = feature_spec[IMAGE_KEY].shape
    train = make_dataset(fn_args.train_files, feature_spec, config, training=True)
    evaluation = make_dataset(fn_args.eval_files, feature_spec, config, training=False)
    num_train = count_records(fn_args.train_files)
    if num_train == 0:
        raise ValueError("no training examples")
    steps_per_epoch = -(-num_train // config.batch_size)
    path, times = first_conv_path(config, image_shape)  # timed once per process; build_model reuses it
    if times:
        print(
            f"  first convolution trains by {path}: "
            + ", ".join(f"{name} {ms:.1f} ms" for name, ms in sorted(times.items()))
            + f" a step here (first_conv auto, batch {config.batch_size})",
            file=sys.stderr,
            flush=True,
        )
    with distribution_strategy(config).scope():
        model = build_model(image_shape, config)
        compile_model(model, config, steps_per_epoch)
    used = callbacks(config, fn_args.log_dir)
    history = model.fit(train, validation_data=evaluation, epochs=config.epochs, callbacks=used, verbose=0)
    record_training(
        used,
        history.history,
        fn_args,
        ["full_string_accuracy", "character_accuracy"],
        f"{fn_args.model_name}: train vs validation",
    )
    fitted = calibrate_and_export(model, evaluation, config, fn_args.transform_graph_dir, fn_args.serving_model_dir)
    with fileio.open(os.path.join(fn_args.model_dir, CALIBRATION_FILE), "w") as f:
        json.dump(fitted, f, indent=2)
    print(
        f"  calibration: temperature {fitted['temperature']:.3f}, eval ECE {fitted['eval_ece_before']:.4f} -> "
        f"{fitted['eval_ece_after']:.4f}; reject_below {fitted['reject_below']:.4f} accepts "
        f"{fitted['eval_accepted_share']:.1%} of eval (right >= {config.accepted_precision:g} with "
        f"{config.accepted_precision_level:.0%} confidence)",
        file=sys.stderr,
        flush=True,
    )
