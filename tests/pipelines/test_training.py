"""The shared training techniques: config checks, optimizers, schedules, callbacks, curves."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf
import tf_keras as keras

from pipelines.captcha.model import (
    CaptchaTrainConfig,
    OneChannelConv,
    activation,
    augment,
    build_model,
    captcha_loss,
    character_accuracy,
    first_conv_path,
    full_string_accuracy,
    make_dataset,
    normalize_contrast,
    page_to_zero,
    shift_columns,
    view_probabilities,
)
from pipelines.captcha.train_config import FIRST_CONV_PATHS
from pipelines.training import (
    TimeBudget,
    TimeDecay,
    TrainingConfig,
    callbacks,
    finish_training,
    fit_time_budget,
    make_optimizer,
    on_a_nonempty_batch,
    plot_curves,
    write_history,
)
from tests.conftest import ROOT


@pytest.mark.parametrize(
    "bad",
    [
        {"optimizer": "adamw"},
        {"lr_schedule": "cosine"},
        {"distribution": "tpu"},
        {"epochs": 0},
        {"dropout": 1.0},
        {"learning_rate": 0},
        {"time_budget_minutes": -1},
        {"lr_schedule": "time"},  # without a time budget to decay over
        {"lr_schedule": "time", "time_budget_minutes": 1, "lr_floor": 2},
        {"run_reserve_seconds": -5},
    ],
    ids=lambda bad: ",".join(bad),
)
def test_config_rejects_values_outside_the_choices(bad):
    with pytest.raises(ValueError):
        TrainingConfig(**bad)


@pytest.mark.parametrize(
    "bad",
    [
        {"heads": "ctc"},
        {"rnn_units": 0},
        {"rnn_layers": 0},
        {"conv_filters": "8,-1"},
        {"test_time_shifts": ""},
        {"test_time_shifts": "0,1,0"},
        {"test_time_shifts": "0,left"},
        {"test_time_shifts": "0,40"},
    ],
)
def test_captcha_config_rejects_values_outside_the_choices(bad):
    with pytest.raises(ValueError):
        CaptchaTrainConfig(**bad)


@pytest.mark.parametrize("name", ["adam", "rmsprop", "adagrad", "sgd"])
def test_every_optimizer_of_the_book_is_available(name):
    optimizer = make_optimizer(TrainingConfig(optimizer=name, learning_rate=0.01), steps_per_epoch=10)
    assert optimizer.__class__.__name__.lower() == name


def test_exponential_schedule_decays_per_epoch():
    optimizer = make_optimizer(TrainingConfig(lr_schedule="exponential", learning_rate=0.1, lr_decay_rate=0.5), 10)
    schedule = keras.optimizers.schedules.deserialize(optimizer.get_config()["learning_rate"])
    assert float(schedule(0)) == pytest.approx(0.1)
    assert float(schedule(20)) == pytest.approx(0.025)  # two epochs of 10 steps


def test_time_schedule_falls_linearly_with_the_clock_to_its_floor():
    now = time.time()
    assert float(TimeDecay(0.1, seconds=100, floor=0.01, start=now)(0)) == pytest.approx(0.1, rel=1e-3)
    assert float(TimeDecay(0.1, seconds=100, floor=0.01, start=now - 50)(0)) == pytest.approx(0.0505, rel=1e-2)
    assert float(TimeDecay(0.1, seconds=100, floor=0.01, start=now - 500)(0)) == pytest.approx(0.001)
    config = TrainingConfig(lr_schedule="time", learning_rate=0.1, time_budget_minutes=2)
    schedule = make_optimizer(config, 10).get_config()["learning_rate"]
    assert schedule["class_name"] == "TimeDecay" and schedule["config"]["seconds"] == 120


def test_time_schedule_trains_inside_fit():
    x = np.random.RandomState(0).rand(64, 2).astype("float32")
    y = x @ np.array([[1.0], [2.0]], dtype="float32")
    model = keras.Sequential([keras.layers.Dense(1, input_shape=(2,))])
    config = TrainingConfig(lr_schedule="time", learning_rate=0.05, time_budget_minutes=1)
    model.compile(make_optimizer(config, 4), "mse")
    history = model.fit(x, y, epochs=20, batch_size=16, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0] / 10


def test_autograph_leaves_tf_keras_alone_and_still_converts_our_code():
    """Importing pipelines.training adds tf_keras to AutoGraph's do-not-convert rules (it re-parsed
    tf_keras's source at every trace: 46 of ~62 profiled seconds of the captcha model's first fit); code of
    ours with Python control flow on a tensor is still converted."""
    from tensorflow.python.autograph.impl import conversion

    assert conversion.is_allowlisted(keras.layers.Dense.call)
    assert conversion.is_allowlisted(keras.Model.train_step)
    assert not conversion.is_allowlisted(make_optimizer)

    def sign(x):
        if x > 0:  # a tensor: only AutoGraph makes this a tf.cond
            return tf.constant(1.0)
        return tf.constant(-1.0)

    inputs = keras.Input(shape=())
    model = keras.Model(inputs, keras.layers.Lambda(lambda t: tf.map_fn(sign, t))(inputs))
    assert model.predict(np.array([2.0, -3.0], "float32"), verbose=0).tolist() == [1.0, -1.0]


def test_time_budget_within_epoch_stops_in_the_middle_of_one():
    budget = TimeBudget(minutes=0.3 / 60, within_epoch=True)

    class Slow(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            time.sleep(0.05)

    model = keras.Sequential([keras.layers.Dense(1, input_shape=(1,))])
    model.compile("sgd", "mse")
    history = model.fit(
        np.ones((400, 1)), np.ones((400, 1)), batch_size=1, epochs=3, verbose=0, callbacks=[Slow(), budget]
    )
    assert len(history.history["loss"]) == 1  # 400 batches of 50 ms would take 20 s; it stopped after ~6
    assert model.optimizer.iterations.numpy() < 50


def test_time_budget_shrinks_to_what_the_run_has_left():
    config = TrainingConfig(time_budget_minutes=10, run_reserve_seconds=60)
    assert fit_time_budget(config, None) is config
    assert fit_time_budget(config, 3600).time_budget_minutes == 10  # at most the configured budget
    assert fit_time_budget(config, 60 + 7 * 60).time_budget_minutes == 7
    assert fit_time_budget(config, 60).time_budget_minutes == 5  # never below half of it
    assert fit_time_budget(TrainingConfig(), 600).time_budget_minutes == 0  # no budget: no limit


def test_callbacks_follow_the_config(tmp_path):
    names = lambda config: {type(c).__name__ for c in callbacks(config, str(tmp_path))}
    assert {"EarlyStopping", "ReduceLROnPlateau", "TensorBoard"} <= names(TrainingConfig(lr_schedule="plateau"))
    assert "EarlyStopping" not in names(TrainingConfig(early_stopping_patience=0))
    assert "TimeBudget" in names(TrainingConfig(time_budget_minutes=5))


def test_early_stopping_restores_the_best_weights(tmp_path):
    x = np.random.RandomState(0).rand(64, 2).astype("float32")
    y = x @ np.array([[1.0], [2.0]], dtype="float32")
    model = keras.Sequential([keras.layers.Dense(1, input_shape=(2,))])
    model.compile(keras.optimizers.SGD(0.5), "mse")
    config = TrainingConfig(epochs=30, early_stopping_patience=2, lr_schedule="none")
    # Validation labels that get worse as the fit improves: the best epoch is early.
    history = model.fit(x, y, validation_data=(x, -y), epochs=30, verbose=0, callbacks=callbacks(config, str(tmp_path)))
    assert len(history.history["loss"]) < 30
    best = min(history.history["val_loss"])
    assert model.evaluate(x, -y, verbose=0) == pytest.approx(best, rel=1e-4)


def test_time_budget_stops_after_the_epoch_that_would_overrun():
    budget = TimeBudget(minutes=0.5 / 60)  # half a second

    class Slow(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            time.sleep(0.2)

    model = keras.Sequential([keras.layers.Dense(1, input_shape=(1,))])
    model.compile("sgd", "mse")
    history = model.fit(np.ones((4, 1)), np.ones((4, 1)), epochs=50, verbose=0, callbacks=[Slow(), budget])
    assert 1 <= len(history.history["loss"]) <= 4


def test_time_budget_restores_the_best_epoch():
    x = np.random.RandomState(0).rand(32, 2).astype("float32")
    y = x @ np.array([[1.0], [2.0]], dtype="float32")
    model = keras.Sequential([keras.layers.Dense(1, input_shape=(2,))])
    model.compile(keras.optimizers.SGD(0.5), "mse")
    budget = TimeBudget(minutes=0.0001)  # stops after the first epoch that ends
    history = model.fit(x, y, validation_data=(x, -y), epochs=5, verbose=0, callbacks=[budget])
    assert len(history.history["loss"]) == 1
    assert model.evaluate(x, -y, verbose=0) == pytest.approx(history.history["val_loss"][0], rel=1e-5)


def test_captcha_metrics_count_whole_strings_and_characters():
    truth = np.array([[1, 2, 3, 4], [1, 2, 3, 4]])
    right = np.eye(10)[[1, 2, 3, 4]]
    wrong_last = np.eye(10)[[1, 2, 3, 5]]
    predicted = np.stack([right, wrong_last]).astype("float32")
    assert float(full_string_accuracy(truth, predicted)) == pytest.approx(0.5)
    assert float(character_accuracy(truth, predicted)) == pytest.approx(7 / 8)


@pytest.mark.parametrize("heads", ["dense", "sequence"])
def test_both_head_types_give_a_distribution_per_position(heads):
    config = CaptchaTrainConfig(charset="0123456789AB", length=5, heads=heads)
    model = build_model((30, 80, 1), config)
    assert model.output_shape == (None, 5, 12)
    out = model(np.random.RandomState(0).rand(3, 30, 80, 1).astype("float32")).numpy()
    np.testing.assert_allclose(out.sum(-1), 1.0, rtol=1e-5)
    book = build_model((30, 80, 1), CaptchaTrainConfig(heads=heads, loss="binary_ce"))
    sigmoids = book(np.zeros((1, 30, 80, 1), "float32")).numpy()
    assert book.output_shape == (None, 4, 10) and ((sigmoids > 0) & (sigmoids < 1)).all()


@pytest.mark.parametrize("loss", ["sparse_ce", "binary_ce"])
def test_label_smoothing_moves_the_best_answer_off_certainty(loss):
    """With smoothing, the loss is lowest for a confident answer that is not certain: a model
    pushed to 1.0 on a rendering it reads pays for it, and one at 0.9 does not."""
    labels = np.array([[0, 1, 2, 3]])

    def outputs(p_right):  # [1, 4, 10]: p_right on each right character, the rest spread evenly
        out = np.full((1, 4, 10), (1 - p_right) / 9, "float32")
        out[0, np.arange(4), labels[0]] = p_right
        return out

    plain = captcha_loss(CaptchaTrainConfig(loss=loss, label_smoothing=0.0))
    smooth = captcha_loss(CaptchaTrainConfig(loss=loss, label_smoothing=0.1))
    assert float(plain(labels, outputs(0.999))) < float(plain(labels, outputs(0.91)))
    assert float(smooth(labels, outputs(0.91))) < float(smooth(labels, outputs(0.999)))
    if loss == "sparse_ce":  # without smoothing: exactly Keras' sparse softmax cross-entropy
        sparse = keras.losses.SparseCategoricalCrossentropy()(labels, outputs(0.8))
        assert float(plain(labels, outputs(0.8))) == pytest.approx(float(sparse), rel=1e-5)
    with pytest.raises(ValueError, match="label_smoothing"):
        CaptchaTrainConfig(label_smoothing=1.0)


@pytest.mark.parametrize("loss", ["sparse_ce", "binary_ce"])
def test_the_captcha_loss_trains_under_a_distribution_strategy(loss):
    """multi_worker training compiles the model inside a strategy's scope, where Keras refuses a
    loss that reduces itself (a closure over a Loss object did, and failed every worker)."""
    config = CaptchaTrainConfig(loss=loss, conv_filters="4", dense_units=8, rnn_units=4)
    rng = np.random.RandomState(0)
    x, y = rng.rand(8, 16, 32, 1).astype("float32"), rng.randint(0, 10, (8, 4))
    with tf.distribute.MirroredStrategy(["/cpu:0"]).scope():
        model = build_model((16, 32, 1), config)
        model.compile("adam", loss=captcha_loss(config))
    history = model.fit(x, y, batch_size=4, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])


def test_sequence_heads_attend_over_the_columns():
    model = build_model((30, 80, 1), CaptchaTrainConfig(heads="sequence"))
    attention = keras.Model(model.input, model.get_layer("position_attention").output)
    weights = attention(np.random.RandomState(1).rand(2, 30, 80, 1).astype("float32")).numpy()
    assert weights.shape == (2, 10, 4)  # 80 pixels pooled three times: 10 columns, one weighting per position
    np.testing.assert_allclose(weights.sum(axis=1), 1.0, rtol=1e-5)


def test_rnn_layers_stack_bidirectional_grus_each_reading_the_one_below():
    def grus(layers):
        model = build_model(
            (16, 32, 1), CaptchaTrainConfig(conv_filters="4", dense_units=6, rnn_units=4, rnn_layers=layers)
        )
        return [layer for layer in model.layers if isinstance(layer, keras.layers.Bidirectional)]

    one, three = grus(1), grus(3)
    assert len(one) == 1 and len(three) == 3
    assert one[0].input.shape[-1] == 6  # the columns' dense features (dense_units)
    assert [g.input.shape[-1] for g in three[1:]] == [8, 8]  # 2 x rnn_units from the GRU below
    assert three[1].input is three[0].output and three[2].input is three[1].output


def test_shifted_columns_move_the_content_and_repeat_the_edge():
    images = np.zeros((2, 4, 10, 1), "float32")
    images[:, :, 0] = 0.5  # the edge column: a grey page
    images[:, 1:3, 4] = 1.0  # a stroke of ink
    right, left = shift_columns(images, 2).numpy(), shift_columns(images, -3).numpy()
    assert np.array_equal(np.nonzero(right[0, 1, :, 0] == 1.0)[0], [6])
    assert np.array_equal(np.nonzero(left[0, 1, :, 0] == 1.0)[0], [1])
    assert (right[:, :, :3] == 0.5).all()  # the space it leaves repeats the edge column, not black
    assert (left[:, :, -3:] == 0.0).all() and shift_columns(images, 0) is images


def test_the_views_answer_with_the_normalised_geometric_mean_of_their_probabilities():
    model = build_model((16, 32, 1), CaptchaTrainConfig(conv_filters="4", dense_units=8, rnn_units=4))
    images = tf.constant(np.random.RandomState(2).rand(3, 16, 32, 1).astype("float32"))
    shifts = [0, -1, 2]
    combined = view_probabilities(model, images, shifts).numpy()
    views = [model(shift_columns(images, s), training=False).numpy() for s in shifts]
    expected = np.exp(np.mean([np.log(v) for v in views], axis=0))
    np.testing.assert_allclose(combined, expected / expected.sum(-1, keepdims=True), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(combined.sum(-1), 1.0, rtol=1e-5)
    assert not np.allclose(combined, views[0], atol=1e-4)  # the other views moved the answer
    np.testing.assert_allclose(view_probabilities(model, images, [0]).numpy(), views[0], rtol=1e-5, atol=1e-7)


def test_a_served_model_answers_an_empty_batch_with_no_rows():
    """oneDNN's convolutions refuse a batch of 0 ("input depth must be evenly divisible by filter
    depth"): the exported signatures asked about no images answered INVALID_ARGUMENT."""
    model = build_model((16, 32, 1), CaptchaTrainConfig(conv_filters="4,8", dense_units=8, rnn_units=4))
    serve = tf.function(
        lambda images: on_a_nonempty_batch(lambda batch: view_probabilities(model, batch, [0, 1]), images),
        input_signature=[tf.TensorSpec([None, 16, 32, 1], tf.float32)],
    )
    assert serve(tf.zeros([0, 16, 32, 1])).shape == (0, 4, 10)
    images = tf.constant(np.random.RandomState(3).rand(3, 16, 32, 1).astype("float32"))
    np.testing.assert_array_equal(serve(images).numpy(), view_probabilities(model, images, [0, 1]).numpy())


def test_augmentation_moves_the_ink_a_little_and_keeps_it():
    images = np.zeros((16, 30, 80, 1), "float32")
    images[:, 10:20, 30:50] = 1.0  # a block of ink in the middle of a blank page
    moved = augment(images, noise=0.0).numpy()
    assert moved.shape == images.shape
    assert 0.8 < moved.sum() / images.sum() < 1.2  # zoom within 5%: about as much ink
    assert np.abs(moved - images).max(axis=(1, 2, 3)).min() > 0.05  # every image moved
    assert np.abs(moved[:, :5]).max() < 1e-3 and np.abs(moved[:, :, :20]).max() < 1e-3  # a small shift, blank edges
    still = augment(images, shift=(0.0, 0.0), max_degrees=0.0, zoom=0.0, noise=0.0).numpy()
    np.testing.assert_allclose(still, images, atol=1e-5)
    noisy = augment(images, shift=(0.0, 0.0), max_degrees=0.0, zoom=0.0, noise=0.02).numpy()
    assert 0.015 < (noisy - images).std() < 0.025


def test_shear_slants_the_ink_and_stretch_changes_only_its_width():
    images = np.zeros((64, 30, 80, 1), "float32")
    images[:, 5:25, 38:42] = 1.0  # an upright bar, 4 columns wide, 20 rows tall
    fixed = dict(shift=(0.0, 0.0), max_degrees=0.0, zoom=0.0, noise=0.0)

    def ink_columns(image, row):
        return np.nonzero(image[row, :, 0] > 0.5)[0]

    slanted = augment(images, shear=0.3, **fixed).numpy()
    leans = [ink_columns(im, 6).mean() - ink_columns(im, 23).mean() for im in slanted]
    assert max(np.abs(leans)) > 2.5 and min(leans) < 0 < max(leans)  # both ways, up to 0.3 x 17 rows
    assert np.allclose(slanted.sum(axis=(1, 2, 3)), images[0].sum(), rtol=0.05)  # a slant keeps the area
    wide = augment(images, stretch=0.5, **fixed).numpy()
    widths = [(im[15, :, 0] > 0.5).sum() for im in wide]
    assert min(widths) < 4 < max(widths)  # narrower and wider
    assert all((im[:, 40, 0] > 0.5).sum() == 20 for im in wide)  # the height is left alone
    np.testing.assert_allclose(augment(images, shear=0.0, stretch=0.0, **fixed).numpy(), images, atol=1e-5)
    with pytest.raises(ValueError, match="augment_shear"):
        CaptchaTrainConfig(augment_stretch=1.0)


def write_captcha_records(path: str, image: np.ndarray, count: int) -> dict:
    """`count` transformed captcha examples of `image` and the label 1234 in one gzipped TFRecord
    file; returns the feature spec that reads them."""
    from pipelines.captcha.preprocessing import IMAGE_KEY, LABEL_KEY

    with tf.io.TFRecordWriter(path, options="GZIP") as writer:
        for _ in range(count):
            feature = {
                IMAGE_KEY: tf.train.Feature(float_list=tf.train.FloatList(value=image.ravel())),
                LABEL_KEY: tf.train.Feature(int64_list=tf.train.Int64List(value=[1, 2, 3, 4])),
            }
            writer.write(tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString())
    return {IMAGE_KEY: tf.io.FixedLenFeature(image.shape, tf.float32), LABEL_KEY: tf.io.FixedLenFeature([4], tf.int64)}


def test_the_training_input_zooms_as_far_as_the_config_asks(tmp_path):
    """make_dataset passes augment_zoom to the augmentation: a block of ink keeps about its area at
    zoom 0 and is drawn up to 40% smaller or larger at 0.4 (its area from about 0.5 to 2.8 times)."""
    image = np.zeros((30, 80, 1), np.float32)
    image[10:20, 30:50] = 1.0
    spec = write_captcha_records(str(tmp_path / "part-0.gz"), image, 64)

    def areas(zoom):
        config = CaptchaTrainConfig(batch_size=64, augment_zoom=zoom, augment_shear=0.0, augment_stretch=0.0)
        images = np.concatenate([x.numpy() for x, _ in make_dataset(str(tmp_path / "part-*.gz"), spec, config, True)])
        return (images > 0.5).sum(axis=(1, 2, 3)) / 200

    still, zoomed = areas(0.0), areas(0.4)
    assert 0.85 < still.min() and still.max() < 1.15
    assert zoomed.min() < 0.75 and zoomed.max() > 1.5
    with pytest.raises(ValueError, match="augment_zoom"):
        CaptchaTrainConfig(augment_zoom=-0.1)


def test_augmentation_stops_at_its_share_of_the_time_budget_while_training_runs(tmp_path):
    """augment_until=0.5 of a budget: batches drawn before half the budget has passed are augmented,
    those drawn after it are the images as rendered, switched inside one iteration (the clock is read
    in the input graph, as the time-annealed rate reads it); at 1 they are augmented to the end."""
    image = np.zeros((30, 80, 1), np.float32)
    image[10:20, 30:50] = 1.0
    spec = write_captcha_records(str(tmp_path / "part-0.gz"), image, 8)
    pattern = str(tmp_path / "part-*.gz")

    def as_rendered(batch) -> bool:
        return bool(np.allclose(batch.numpy(), image[None], atol=1e-6))

    budget = dict(batch_size=8, time_budget_minutes=0.2, augment_until=0.5)  # the switch 6 s after lr_start
    start = time.time()
    batches = iter(make_dataset(pattern, spec, CaptchaTrainConfig(**budget, lr_start=start), True).repeat())
    assert not as_rendered(next(batches)[0])
    time.sleep(max(0.0, start + 6 - time.time()) + 0.5)
    after = [next(batches)[0] for _ in range(6)]  # past the batches prefetched before the switch
    assert as_rendered(after[-1])

    started_long_ago = time.time() - 3600
    past = CaptchaTrainConfig(**budget, lr_start=started_long_ago)
    assert all(as_rendered(x) for x, _ in make_dataset(pattern, spec, past, True))
    throughout = CaptchaTrainConfig(**{**budget, "augment_until": 1.0}, lr_start=started_long_ago)
    assert not any(as_rendered(x) for x, _ in make_dataset(pattern, spec, throughout, True))
    with pytest.raises(ValueError, match="augment_until"):
        CaptchaTrainConfig(augment_until=1.5)


def test_every_trainer_input_pipeline_has_tf_data_autotuning_off(tmp_path):
    """With autotuning on, Keras' drop of each epoch's iterator waited for tf.data's optimisation
    thread: 1-3 s between MNIST epochs of 7-9 s on 2 cores (pipelines.training.input_options).
    The captcha and MNIST Trainers' training and validation pipelines, and the multi-worker one,
    are built with it off."""
    from pipelines.mnist.model import make_dataset as mnist_dataset
    from pipelines.mnist.train_config import MnistTrainConfig

    spec = write_captcha_records(str(tmp_path / "part-0.gz"), np.zeros((6, 10, 1), np.float32), 4)
    pattern = str(tmp_path / "part-*.gz")
    images, labels = np.zeros((4, 28, 28, 1), np.float32), np.arange(4)
    builders = {
        "captcha": lambda training: make_dataset(pattern, spec, CaptchaTrainConfig(batch_size=2), training),
        "captcha multi-worker": lambda training: make_dataset(
            pattern, spec, CaptchaTrainConfig(batch_size=2, distribution="multi_worker"), training
        ),
        "mnist": lambda training: mnist_dataset(images, labels, MnistTrainConfig(batch_size=2), training),
    }
    pipelines = {f"{name} training={t}": build(t) for name, build in builders.items() for t in (True, False)}
    autotuned = [name for name, dataset in pipelines.items() if dataset.options().autotune.enabled is not False]
    assert not autotuned
    assert sum(1 for _ in pipelines["mnist training=True"]) == 2  # and they still read their examples
    assert sum(1 for _ in pipelines["captcha training=False"]) == 2


def test_normalize_contrast_spans_each_image_from_0_to_1():
    rng = np.random.RandomState(3)
    faint = 0.2 + 0.1 * rng.rand(2, 30, 80, 1).astype("float32")  # a grey page and faint ink
    strong = rng.rand(1, 30, 80, 1).astype("float32")
    blank = np.full((1, 30, 80, 1), 0.3, "float32")
    out = normalize_contrast(np.concatenate([faint, strong, blank])).numpy()
    np.testing.assert_allclose(out[:3].min(axis=(1, 2, 3)), 0.0, atol=1e-6)
    np.testing.assert_allclose(out[:3].max(axis=(1, 2, 3)), 1.0, atol=1e-6)
    np.testing.assert_allclose(out[3], 0.0)  # nothing to stretch: shifted to 0, not blown up
    np.testing.assert_allclose(out[0], (faint[0] - faint[0].min()) / np.ptp(faint[0]), rtol=1e-5, atol=1e-6)
    model = build_model((30, 80, 1), CaptchaTrainConfig())  # the default
    plain = build_model((30, 80, 1), CaptchaTrainConfig(normalize_contrast=False))
    plain.set_weights(model.get_weights())  # the same network; only the normalisation differs
    np.testing.assert_allclose(model(faint).numpy(), plain(out[:2]).numpy(), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(model(faint).numpy(), model(faint * 3 - 0.5).numpy(), rtol=1e-3, atol=1e-5)


def test_page_to_zero_inverts_only_images_whose_page_is_the_bright_part():
    rng = np.random.RandomState(4)
    ink_on_blank = np.zeros((2, 30, 80, 1), "float32")
    ink_on_blank[:, 8:22, 10:70] = rng.rand(2, 14, 60, 1) > 0.6  # strokes inside, a blank border
    inverted = 1.0 - ink_on_blank
    out = page_to_zero(np.concatenate([ink_on_blank, inverted])).numpy()
    np.testing.assert_allclose(out[:2], ink_on_blank)  # the training's polarity: untouched
    np.testing.assert_allclose(out[2:], ink_on_blank, atol=1e-6)  # light text on a dark page: turned back
    model = build_model((30, 80, 1), CaptchaTrainConfig())  # the default reads either polarity
    np.testing.assert_allclose(model(ink_on_blank).numpy(), model(inverted).numpy(), rtol=1e-4, atol=1e-6)
    one_way = build_model((30, 80, 1), CaptchaTrainConfig(either_polarity=False))
    one_way.set_weights(model.get_weights())
    assert np.abs(one_way(ink_on_blank).numpy() - one_way(inverted).numpy()).max() > 1e-3


def test_no_rendering_a_model_is_trained_or_scored_on_is_inverted_and_every_inverse_is():
    """page_to_zero is a no-op on every preset and on wheezy's captchas, framed or not, and undoes
    their inversion."""
    import io

    from PIL import Image, ImageDraw

    from bench.robustness import OutsideRenderer, inverted_png
    from components.example_gen.captcha_source import STYLES, CaptchaConfig, CaptchaRenderer
    from pipelines.captcha.preprocessing import decode_images

    # One graph for every batch: decode_images' map_fn run eagerly took 0.6 s per 40 images.
    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def prepare(encoded):
        return normalize_contrast(decode_images(encoded, 60, 160))

    def prepared(pngs):
        return prepare(tf.constant(pngs)).numpy()

    for style in [*STYLES, "wheezy"]:
        if style == "wheezy":
            renderer = OutsideRenderer("wheezy", "0123456789", 4)
        else:
            renderer = CaptchaRenderer(CaptchaConfig(), seed=11, style=style)
        pngs = [renderer.render(i).png for i in range(40)]
        inverse, framed = [inverted_png(data) for data in pngs], []
        for data in pngs:
            image = Image.open(io.BytesIO(data)).convert("RGB")
            ImageDraw.Draw(image).rectangle([0, 0, image.width - 1, image.height - 1], outline=(0, 0, 0), width=3)
            out = io.BytesIO()
            image.save(out, format="PNG")
            framed.append(out.getvalue())
        images, inverted, in_frames = prepared(pngs), prepared(inverse), prepared(framed)
        np.testing.assert_array_equal(page_to_zero(images).numpy(), images, err_msg=style)
        np.testing.assert_array_equal(page_to_zero(in_frames).numpy(), in_frames, err_msg=style)  # a black frame
        # Re-encoding a JPEG rendering as PNG moves a few grey levels: close, not equal.
        assert np.abs(page_to_zero(inverted).numpy() - images).mean() < 0.01, style


@pytest.mark.parametrize("name,layer", [("relu", "ReLU"), ("leaky_relu", "LeakyReLU"), ("elu", "ELU")])
def test_captcha_model_uses_the_configured_activation(name, layer):
    model = build_model((30, 80, 1), CaptchaTrainConfig(activation=name))
    kinds = {type(ln).__name__ for ln in model.layers}
    assert layer in kinds and not ({"ReLU", "LeakyReLU", "ELU"} - {layer}) & kinds


def _plain_conv_model(input_shape, config: CaptchaTrainConfig) -> keras.Model:
    """The conv blocks as written before they were made faster: Conv2D, activation, then the pool."""
    images = keras.Input(shape=input_shape)
    x = page_to_zero(normalize_contrast(images))
    for filters in config.filters:
        for _ in range(config.convs_per_block):
            x = keras.layers.Conv2D(filters, 3, padding="same", use_bias=not config.batch_norm)(x)
            if config.batch_norm:
                x = keras.layers.BatchNormalization()(x)
            x = activation(config)(x)
        x = keras.layers.MaxPool2D()(x)
    return keras.Model(images, x)


@pytest.mark.parametrize(
    "fields",
    [
        {},  # the default: one convolution per block, ELU
        {"activation": "relu", "convs_per_block": 2},
        {"activation": "leaky_relu", "batch_norm": True},
    ],
)
@pytest.mark.parametrize(
    "training, first_conv",
    [(True, "shifted"), (True, "conv2d"), (False, "auto")],  # a forward pass alone always runs conv2d
)
def test_the_conv_blocks_compute_what_conv2d_activation_and_pool_compute(fields, training, first_conv):
    """The first convolution by either path, and the pool before the last activation of a block, are
    speed-ups only: the same weights give the same features and the same gradients."""
    config = CaptchaTrainConfig(**fields, first_conv=first_conv)
    fast = build_model((40, 108, 1), config)
    features = keras.Model(fast.inputs, fast.get_layer(index=_last_pool_or_activation(fast)).output)
    (first,) = [layer for layer in features.layers if isinstance(layer, OneChannelConv)]  # the first convolution
    assert first.training_path == first_conv_path(config, (40, 108, 1))[0]
    plain = _plain_conv_model((40, 108, 1), config)
    # Random weights (a batch normalisation's scales negative too), its moving statistics left as they are.
    rng = np.random.default_rng(7)
    plain.set_weights([rng.normal(0, 0.3, w.shape) if w.trainable else w.numpy() for w in plain.weights])
    features.set_weights(plain.get_weights())
    images = tf.constant(rng.random((6, 40, 108, 1)), tf.float32)
    with tf.GradientTape(persistent=True) as tape:
        want, got = plain(images, training=training), features(images, training=training)
        want_loss, got_loss = tf.reduce_sum(want**2), tf.reduce_sum(got**2)
    pairs = [(got, want)] + list(
        zip(tape.gradient(got_loss, features.trainable_weights), tape.gradient(want_loss, plain.trainable_weights))
    )
    for fast_value, plain_value in pairs:
        # Equal up to float32 rounding, which sums in another order: gradients here reach 10^4.
        scale = float(np.abs(plain_value.numpy()).max())
        np.testing.assert_allclose(fast_value.numpy(), plain_value.numpy(), rtol=1e-4, atol=1e-5 * scale)


def test_first_conv_auto_trains_by_the_path_it_timed_quicker_here():
    """first_conv=auto times both paths of the first convolution on this machine, once per process
    and shape, and builds the model with the quicker; a path named in the config is taken as it is."""
    path, times = first_conv_path(CaptchaTrainConfig(batch_size=16), (24, 40, 1))
    assert set(times) == set(FIRST_CONV_PATHS) and all(ms > 0 for ms in times.values())
    assert path == min(times, key=times.__getitem__)
    assert first_conv_path(CaptchaTrainConfig(batch_size=16), (24, 40, 1)) == (path, times)  # not timed again
    for named in FIRST_CONV_PATHS:
        config = CaptchaTrainConfig(batch_size=16, first_conv=named, conv_filters="4", rnn_units=4, dense_units=8)
        assert first_conv_path(config, (24, 40, 1)) == (named, None)
        (first,) = [layer for layer in build_model((24, 40, 1), config).layers if isinstance(layer, OneChannelConv)]
        assert first.training_path == named
        assert OneChannelConv.from_config(first.get_config()).training_path == named
    assert first_conv_path(CaptchaTrainConfig(), (24, 40, 3)) == ("conv2d", None)  # no one-channel convolution
    with pytest.raises(ValueError, match="first_conv"):
        CaptchaTrainConfig(first_conv="fastest")
    with pytest.raises(ValueError, match="training_path"):
        OneChannelConv(8, training_path="auto")


def _last_pool_or_activation(model: keras.Model) -> int:
    """The index of the layer that ends the conv blocks: the one before the heads' first Permute or Flatten."""
    kinds = [type(layer).__name__ for layer in model.layers]
    return min(i for i, kind in enumerate(kinds) if kind in ("Permute", "Flatten")) - 1


def test_unknown_activation_is_refused():
    with pytest.raises(ValueError, match="activation"):
        CaptchaTrainConfig(activation="swish")


def test_history_and_curves_are_written(tmp_path):
    history = {"loss": [1.0, 0.5], "val_loss": [1.1, 0.6], "rmse": [3.0, 2.0], "val_rmse": [3.1, 2.2]}
    write_history(history, str(tmp_path / "history.json"))
    assert json.load(open(tmp_path / "history.json")) == history
    plot_curves(history, str(tmp_path / "curves.png"), ["rmse"], "test")
    assert (tmp_path / "curves.png").read_bytes().startswith(b"\x89PNG")


def _drive(used: list, model, epochs: int, lr_at, val_loss_at) -> int:
    """Fast fake epochs: the callbacks see the epoch ends a fit would give them, with the learning
    rate `lr_at(epoch)` and val_loss `val_loss_at(epoch)`; returns the epochs run until one stops training."""
    for callback in used:
        callback.set_model(model)
        callback.set_params({"epochs": epochs, "verbose": 0})
        callback.on_train_begin()
    for epoch in range(epochs):
        model.optimizer.learning_rate.assign(lr_at(epoch))
        logs = {"loss": 1.0, "val_loss": val_loss_at(epoch)}
        for callback in used:
            callback.on_epoch_begin(epoch)
            callback.on_epoch_end(epoch, logs)
        if model.stop_training:
            break
    for callback in used:
        callback.on_train_end()
    return epoch + 1


@pytest.mark.parametrize("schedule", ["time", "exponential"])
def test_early_stopping_cannot_end_training_while_the_learning_rate_is_high(tmp_path, schedule):
    """A fast machine plateaus early (issue #14: stopped at 70% of the peak rate, 0.985 instead of 0.99):
    patience counts only once the rate has annealed below early_stop_lr_fraction of its peak."""
    config = TrainingConfig(
        epochs=200,
        early_stopping_patience=3,
        early_stop_lr_fraction=0.1,
        lr_schedule=schedule,
        time_budget_minutes=60 if schedule == "time" else 0,
    )
    used = [c for c in callbacks(config, str(tmp_path)) if type(c).__name__ in ("AnnealedEarlyStopping", "TrainingEnd")]
    assert len(used) == 2
    model = keras.Sequential([keras.layers.Dense(1, input_shape=(1,))])
    model.compile(keras.optimizers.SGD(keras.backend.variable(1e-3)), "mse")
    model.stop_training = False
    peak = 3e-3
    lr_at = lambda epoch: peak * 0.9**epoch  # noqa: E731 - falls 10% an epoch: below 10% of the peak from epoch 22
    ran = _drive(used, model, 200, lr_at, lambda epoch: 1.0 if epoch else 0.5)  # never improves after epoch 1
    first_annealed = next(e for e in range(200) if lr_at(e) <= 0.1 * peak)
    assert ran == first_annealed + 3  # the 3rd epoch without improvement, counted from the first annealed one
    end = used[0].summary
    assert end["reason"] == "early stopping" and end["restored_epoch"] == 1
    assert end["lr"] <= 0.1 * end["peak_lr"]
    assert len(used[0].lrs) == ran and used[0].lrs[0] == pytest.approx(peak)


def test_an_epoch_cap_that_ends_a_high_schedule_says_so(tmp_path):
    config = TrainingConfig(epochs=5, early_stopping_patience=0, lr_schedule="exponential", time_budget_minutes=0)
    used = [c for c in callbacks(config, str(tmp_path)) if type(c).__name__ == "TrainingEnd"]
    model = keras.Sequential([keras.layers.Dense(1, input_shape=(1,))])
    model.compile(keras.optimizers.SGD(keras.backend.variable(1e-3)), "mse")
    model.stop_training = False
    _drive(used, model, 5, lambda epoch: 3e-3 * 0.9**epoch, lambda epoch: 1.0)
    assert used[0].summary["reason"] == "all epochs run"
    assert "had not annealed: raise epochs" in used[0].describe()  # 66% of the peak at the end
    _drive(used, model, 5, lambda epoch: 3e-3 * 0.1**epoch, lambda epoch: 1.0)
    assert "annealed" not in used[0].describe()


def test_plain_early_stopping_is_kept_for_schedules_that_do_not_anneal(tmp_path):
    names = [type(c).__name__ for c in callbacks(TrainingConfig(lr_schedule="plateau"), str(tmp_path))]
    assert "EarlyStopping" in names and "AnnealedEarlyStopping" not in names
    config = TrainingConfig(lr_schedule="time", time_budget_minutes=1)
    assert "AnnealedEarlyStopping" in [type(c).__name__ for c in callbacks(config, str(tmp_path))]


def test_training_end_says_why_it_stopped_and_curves_show_the_rate(tmp_path):
    x = np.random.RandomState(0).rand(32, 2).astype("float32")
    y = x @ np.array([[1.0], [2.0]], dtype="float32")
    model = keras.Sequential([keras.layers.Dense(1, input_shape=(2,))])
    model.compile(keras.optimizers.SGD(0.1), "mse")
    config = TrainingConfig(epochs=3, early_stopping_patience=0, lr_schedule="none", time_budget_minutes=0.0001)
    used = callbacks(config, str(tmp_path / "logs"))
    history = model.fit(x, y, validation_data=(x, -y), epochs=3, verbose=0, callbacks=used)
    end = finish_training(used, str(tmp_path / "training_end.json"))
    assert json.load(open(tmp_path / "training_end.json")) == end
    assert end["reason"] == "time budget" and end["epochs"] == 1 and end["restored_epoch"] == 1
    assert end["lr"] == pytest.approx(0.1)
    assert history.history["lr"] == [pytest.approx(0.1)]  # the rate per epoch is in the history
    plot_curves(history.history, str(tmp_path / "curves.png"), [], "t", restored_epoch=end["restored_epoch"])
    assert (tmp_path / "curves.png").read_bytes().startswith(b"\x89PNG")


ONE_CORE_DATASET = r"""
import os, sys
os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core, before TensorFlow counts them
import numpy as np
import tensorflow as tf
from pipelines.captcha.model import CaptchaTrainConfig, make_dataset
from pipelines.captcha.preprocessing import IMAGE_KEY, LABEL_KEY

folder = sys.argv[1]
for shard in range(3):
    with tf.io.TFRecordWriter(f"{folder}/part-{shard}.gz", options="GZIP") as writer:
        for i in range(8):
            image = np.full(6 * 10, shard * 8 + i, np.float32)
            example = tf.train.Example(features=tf.train.Features(feature={
                IMAGE_KEY: tf.train.Feature(float_list=tf.train.FloatList(value=image)),
                LABEL_KEY: tf.train.Feature(int64_list=tf.train.Int64List(value=[1, 2, 3, 4])),
            }))
            writer.write(example.SerializeToString())
spec = {IMAGE_KEY: tf.io.FixedLenFeature([6, 10, 1], tf.float32), LABEL_KEY: tf.io.FixedLenFeature([4], tf.int64)}
config = CaptchaTrainConfig(batch_size=5, augment=False)
for training in (True, False):
    seen = [float(v) for images, _ in make_dataset(f"{folder}/part-*.gz", spec, config, training) for v in images[:, 0, 0, 0].numpy()]
    assert sorted(seen) == list(range(24)), (training, sorted(seen))
print("cores", len(os.sched_getaffinity(0)))
"""


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="needs os.sched_setaffinity (Linux)")
def test_the_training_input_reads_every_record_on_a_one_core_machine(tmp_path):
    """On one core (`taskset -c 0`, a one-CPU container) tf.data's interleave defaults to one file at
    a time and refused the two parallel reads asked of it: every captcha Trainer failed there with
    "num_parallel_calls is 2 and cycle_length is 1"."""
    result = subprocess.run(
        [sys.executable, "-c", ONE_CORE_DATASET, str(tmp_path)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": ROOT, "TF_CPP_MIN_LOG_LEVEL": "2"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "cores 1" in result.stdout
