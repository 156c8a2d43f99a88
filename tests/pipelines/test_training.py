"""The shared training techniques: config checks, optimizers, schedules, callbacks, curves."""
from __future__ import annotations

import json
import time

import numpy as np
import pytest
import tf_keras as keras

from pipelines.captcha.model import CaptchaTrainConfig, build_model, character_accuracy, full_string_accuracy
from pipelines.training import TimeBudget, TrainingConfig, callbacks, make_optimizer, plot_curves, write_history


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
    ],
)
def test_config_rejects_values_outside_the_choices(bad):
    with pytest.raises(ValueError):
        TrainingConfig(**bad)


@pytest.mark.parametrize("name", ["adam", "rmsprop", "adagrad", "sgd"])
def test_every_optimizer_of_the_book_is_available(name):
    optimizer = make_optimizer(TrainingConfig(optimizer=name, learning_rate=0.01), steps_per_epoch=10)
    assert optimizer.__class__.__name__.lower() == name


def test_exponential_schedule_decays_per_epoch():
    optimizer = make_optimizer(TrainingConfig(lr_schedule="exponential", learning_rate=0.1, lr_decay_rate=0.5), 10)
    schedule = keras.optimizers.schedules.deserialize(optimizer.get_config()["learning_rate"])
    assert float(schedule(0)) == pytest.approx(0.1)
    assert float(schedule(20)) == pytest.approx(0.025)  # two epochs of 10 steps


def test_callbacks_follow_the_config(tmp_path):
    names = lambda config: {type(c).__name__ for c in callbacks(config, str(tmp_path))}  # noqa: E731
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


def test_captcha_model_has_one_head_per_position():
    config = CaptchaTrainConfig(charset="0123456789AB", length=5)
    model = build_model((30, 80, 1), config)
    assert model.output_shape == (None, 5, 12)
    out = model(np.zeros((2, 30, 80, 1), "float32")).numpy()
    np.testing.assert_allclose(out.sum(-1), 1.0, rtol=1e-5)
    book = build_model((30, 80, 1), CaptchaTrainConfig(loss="binary_ce"))
    assert book.output_shape == (None, 4, 10)


@pytest.mark.parametrize("name,layer", [("relu", "ReLU"), ("leaky_relu", "LeakyReLU"), ("elu", "ELU")])
def test_captcha_model_uses_the_configured_activation(name, layer):
    model = build_model((30, 80, 1), CaptchaTrainConfig(activation=name))
    kinds = {type(l).__name__ for l in model.layers}
    assert layer in kinds and not ({"ReLU", "LeakyReLU", "ELU"} - {layer}) & kinds


def test_unknown_activation_is_refused():
    with pytest.raises(ValueError, match="activation"):
        CaptchaTrainConfig(activation="swish")


def test_history_and_curves_are_written(tmp_path):
    history = {"loss": [1.0, 0.5], "val_loss": [1.1, 0.6], "rmse": [3.0, 2.0], "val_rmse": [3.1, 2.2]}
    write_history(history, str(tmp_path / "history.json"))
    assert json.load(open(tmp_path / "history.json")) == history
    plot_curves(history, str(tmp_path / "curves.png"), ["rmse"], "test")
    assert (tmp_path / "curves.png").read_bytes().startswith(b"\x89PNG")
