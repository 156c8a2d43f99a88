"""The book's training techniques, shared by every pipeline's model: optimizers, learning-rate
schedules, early stopping, regularisation knobs, distribution strategies, and the training record
(history.json, curves.png, TensorBoard logs)."""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import os
import sys
import time

import tensorflow as tf
import tf_keras as keras

from components.base import fileio
from pipelines.training_config import TrainingConfig


def _keep_autograph_out_of_tf_keras() -> None:
    """AutoGraph rewrites the Python source of every function a tf.function calls unless a rule
    says not to; TensorFlow's rules exempt `tensorflow` and `keras` (Keras 3) but not `tf_keras`,
    the Keras 2 these models use, so every trace re-parsed tf_keras's own fit, layer and metric
    code: 46 of the ~62 profiled seconds of the captcha model's first `fit` (cProfile,
    `ast.generic_visit`); unprofiled, that fit took 48.7 s, and 13.4 s with this rule
    (BENCHMARKS.md). tf_keras is written to run unconverted, as Keras 2 did inside TensorFlow
    under the `keras` name; the models' own functions are still converted, and training is
    unchanged (the same losses and weights, bit for bit, under op determinism). The rules are
    AutoGraph's module-level tuple, read at each conversion; a TensorFlow without it only trains
    slower."""
    try:
        from tensorflow.python.autograph.core import config, config_lib
    except ImportError:  # pragma: no cover - another TensorFlow layout: slower, not wrong
        return
    config.CONVERSION_RULES = (config_lib.DoNotConvert("tf_keras"), *config.CONVERSION_RULES)


_keep_autograph_out_of_tf_keras()


def fit_time_budget(config: TrainingConfig, seconds_left: float | None):
    """`config` with its time budget cut to what the pipeline run has left (less what the
    run needs after training), but never below half of it: on a machine too slow for the
    run's budget a model that reads is worth more than a run that ends on time."""
    if seconds_left is None or config.time_budget_minutes <= 0:
        return config
    available = (seconds_left - config.run_reserve_seconds) / 60
    minutes = round(max(min(config.time_budget_minutes, available), config.time_budget_minutes / 2), 2)
    print(
        f"  training time budget: {minutes:.1f} min (at most {config.time_budget_minutes:g}; the run has "
        f"{seconds_left / 60:.1f} min left, {config.run_reserve_seconds / 60:.1f} of them kept for what follows training)",
        file=sys.stderr,
        flush=True,
    )
    return dataclasses.replace(config, time_budget_minutes=minutes)


@functools.cache
def multi_worker_strategy() -> tf.distribute.MultiWorkerMirroredStrategy:
    """One per process, made before any other TF op (collective ops are configured at start-up);
    components/trainer/worker.py makes it first thing."""
    if "TF_CONFIG" not in os.environ:
        raise ValueError("distribution=multi_worker needs TF_CONFIG (cluster and task) in the environment")
    return tf.distribute.MultiWorkerMirroredStrategy()


def distribution_strategy(config: TrainingConfig) -> tf.distribute.Strategy:
    if config.distribution == "mirrored":
        return tf.distribute.MirroredStrategy()
    if config.distribution == "multi_worker":
        return multi_worker_strategy()
    return tf.distribute.get_strategy()


def agreed(strategy: tf.distribute.Strategy, decision: bool) -> bool:
    """True on every worker if it is True on any: a stop that only some workers take would leave
    the others waiting in the next step's all-reduce."""
    if strategy.extended._in_multi_worker_mode():  # noqa: SLF001 - TF's own test for it
        votes = strategy.run(lambda: tf.constant(1.0 if decision else 0.0))
        return bool(strategy.reduce(tf.distribute.ReduceOp.SUM, votes, axis=None).numpy() > 0)
    return decision


def input_options() -> tf.data.Options:
    """tf.data options for a Trainer's input pipelines: autotuning off (each pipeline sets its own
    parallelism instead).

    With autotuning on, dropping an iterator waits for tf.data's optimisation thread to wake from its
    periodic sleep, and Keras drops the training iterator at the end of every epoch. On 2 busy cores
    that stalled 40-55 s between captcha epochs (py-spy: RootDataset::Iterator::~Iterator), 1-3 s
    between MNIST epochs of 7-9 s (14% of the MNIST Trainer's time in `fit`), and in about every
    second run it stretched the timed `fit` of bench.model_throughput to a whole multiple of about
    10.24 s (BENCHMARKS.md)."""
    options = tf.data.Options()
    options.autotune.enabled = False
    return options


class TimeDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Falls linearly with wall-clock time from `initial_learning_rate` to `floor` times it at
    `seconds` after `start` (a time.time() value), then stays there.

    With a time budget the number of steps is not known in advance (it depends on the
    machine), so a schedule over steps either ends early or is cut off while the rate is
    still high; this one is annealed exactly when TimeBudget stops training. The clock is
    read in the graph (tf.timestamp), so it costs no Python per step."""

    def __init__(self, initial_learning_rate: float, seconds: float, floor: float = 0.01, start: float | None = None):
        super().__init__()
        self.initial_learning_rate = float(initial_learning_rate)
        self.seconds = float(seconds)
        self.floor = float(floor)
        self.start = time.time() if start is None else float(start)

    def __call__(self, step):
        fraction = tf.clip_by_value((tf.timestamp() - self.start) / self.seconds, 0.0, 1.0)
        scale = 1.0 - (1.0 - self.floor) * fraction
        return tf.cast(self.initial_learning_rate * scale, tf.float32)

    def get_config(self) -> dict:
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "seconds": self.seconds,
            "floor": self.floor,
            "start": self.start,
        }


def make_optimizer(config: TrainingConfig, steps_per_epoch: int) -> keras.optimizers.Optimizer:
    learning_rate = config.learning_rate
    if config.lr_schedule == "exponential":
        learning_rate = keras.optimizers.schedules.ExponentialDecay(
            config.learning_rate, decay_steps=max(1, steps_per_epoch), decay_rate=config.lr_decay_rate
        )
    elif config.lr_schedule == "time":
        learning_rate = TimeDecay(
            config.learning_rate, config.time_budget_minutes * 60, config.lr_floor, start=config.lr_start or None
        )
    return {
        "adam": keras.optimizers.Adam,
        "rmsprop": keras.optimizers.RMSprop,
        "adagrad": keras.optimizers.Adagrad,
        "sgd": lambda learning_rate: keras.optimizers.SGD(learning_rate, momentum=0.9),
    }[config.optimizer](learning_rate=learning_rate)


def current_lr(model: keras.Model) -> float:
    """The learning rate the optimizer applies at its current step (schedules evaluated)."""
    lr = model.optimizer.learning_rate
    if isinstance(lr, keras.optimizers.schedules.LearningRateSchedule):
        return float(lr(model.optimizer.iterations))
    value = keras.backend.get_value(lr)
    return float(value(model.optimizer.iterations)) if callable(value) else float(value)


class AnnealedEarlyStopping(keras.callbacks.EarlyStopping):
    """Early stopping on val_loss that cannot end training while the learning rate is above
    `lr_fraction` of its peak: until then it tracks the best epoch but does not count patience
    (a plateau at a high rate is the schedule's job, not a reason to stop). Keras' own rule
    applies once the rate has annealed."""

    def __init__(self, lr_fraction: float, **kwargs) -> None:
        super().__init__(**kwargs)
        self.lr_fraction = lr_fraction
        self._patience = self.patience

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        self.peak_lr = 0.0

    def on_epoch_end(self, epoch, logs=None):
        lr = current_lr(self.model)
        self.peak_lr = max(self.peak_lr, lr)
        annealed = lr <= self.lr_fraction * self.peak_lr
        self.patience = self._patience if annealed else 2**31
        super().on_epoch_end(epoch, logs)  # tracks the best epoch and its weights either way
        if not annealed:
            self.wait = 0  # patience counts only from the first annealed epoch


UNANNEALED_FRACTION = 0.1  # of the peak rate, above which a schedule has not annealed


class TrainingEnd(keras.callbacks.Callback):
    """Adds the learning rate to every epoch's logs (so history.json and the curves have it) and,
    when training ends, says why: the time budget, early stopping, or all epochs run; at which
    rate; and which epoch's weights were restored."""

    def __init__(self, siblings: list) -> None:
        super().__init__()
        self.siblings = siblings  # the callbacks that may stop training
        self.summary: dict = {}

    def on_train_begin(self, logs=None):
        self.lrs: list[float] = []

    def on_epoch_end(self, epoch, logs=None):
        lr = current_lr(self.model)
        self.lrs.append(lr)
        if logs is not None:
            logs.setdefault("lr", lr)

    def on_train_end(self, logs=None):
        epochs = len(self.lrs)
        reason, restored = "all epochs run", None
        for callback in self.siblings:
            if isinstance(callback, TimeBudget) and getattr(callback, "stopped", False):
                reason, restored = "time budget", callback.restored_epoch
            elif isinstance(callback, keras.callbacks.EarlyStopping) and callback.stopped_epoch > 0:
                reason = "early stopping"
                restored = (
                    callback.best_epoch + 1
                    if callback.restore_best_weights and callback.best_weights is not None
                    else None
                )
        self.summary = {
            "reason": reason,
            "epochs": epochs,
            "lr": self.lrs[-1] if self.lrs else None,
            "peak_lr": max(self.lrs) if self.lrs else None,
            "restored_epoch": restored,
        }

    def describe(self) -> str:
        s = self.summary
        if not s:
            return "training did not run"
        restored = f"; weights of epoch {s['restored_epoch']} restored" if s.get("restored_epoch") else ""
        # The epoch cap ended a schedule that was still high: a machine this fast could have used
        # its budget on more epochs (issue #14), which the user decides by raising `epochs`.
        unannealed = s["reason"] == "all epochs run" and s["lr"] > UNANNEALED_FRACTION * s["peak_lr"]
        warning = "; the rate had not annealed: raise epochs to use the whole budget" if unannealed else ""
        return (
            f"stopped by {s['reason']} after epoch {s['epochs']} at learning rate {s['lr']:.2e} "
            f"({s['lr'] / s['peak_lr']:.0%} of its peak {s['peak_lr']:.2e}){restored}{warning}"
        )


def finish_training(found: list, path: str) -> dict:
    """After fit: the TrainingEnd summary of `found` (callbacks()), printed and written to `path`."""
    end = next(c for c in found if isinstance(c, TrainingEnd))
    print(f"  training: {end.describe()}", file=sys.stderr, flush=True)
    with fileio.open(path, "w") as f:
        json.dump(end.summary, f, indent=2)
    return end.summary


class EpochLine(keras.callbacks.Callback):
    """One line every `every` epochs on stderr: the metrics, the learning rate, the time taken."""

    def __init__(self, every: int = 1) -> None:
        super().__init__()
        self.every = every

    def on_train_begin(self, logs=None):
        self.started = time.monotonic()

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch_started = time.monotonic()

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.every and epoch + 1 != self.params.get("epochs"):
            return
        logs = logs or {}
        shown = "  ".join(f"{k} {v:.4f}" for k, v in sorted(logs.items()) if k != "lr")
        lr = keras.backend.get_value(self.model.optimizer.learning_rate)
        lr_text = f"  lr {float(lr(self.model.optimizer.iterations)) if callable(lr) else float(lr):.2e}"
        print(
            f"  epoch {epoch + 1}/{self.params.get('epochs')}: {shown}{lr_text}  "
            f"({time.monotonic() - self.epoch_started:.0f}s, total {time.monotonic() - self.started:.0f}s)",
            file=sys.stderr,
            flush=True,
        )


class TimeBudget(keras.callbacks.Callback):
    """Stops training when another epoch would overrun the budget, so a run ends on time,
    and then restores the weights of the epoch with the best `monitor` (as early stopping would).

    With `within_epoch` it stops at the first batch past the budget instead (the epoch is
    cut short and validated as it stands): for the time schedule, whose learning rate has
    only just reached its floor then."""

    def __init__(self, minutes: float, monitor: str = "val_loss", within_epoch: bool = False) -> None:
        super().__init__()
        self.seconds = minutes * 60
        self.monitor = monitor
        self.within_epoch = within_epoch
        self._supports_tf_logs = True  # the batch hook reads no logs: no per-step sync for them

    def on_train_begin(self, logs=None):
        self.started = time.monotonic()
        self.best, self.best_weights, self.best_epoch = float("inf"), None, None
        self.stopped, self.restored_epoch = False, None

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch_started = time.monotonic()

    def on_train_batch_end(self, batch, logs=None):
        # Within an epoch only on one worker: several would have to agree at every step.
        if self.within_epoch and time.monotonic() - self.started >= self.seconds and not self._multi_worker():
            self.model.stop_training = True

    def _multi_worker(self) -> bool:
        return self.model.distribute_strategy.extended._in_multi_worker_mode()  # noqa: SLF001 - TF's own test for it

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is not None and value < self.best:
            self.best, self.best_weights, self.best_epoch = value, self.model.get_weights(), epoch + 1
        epoch_seconds = 0.0 if self.within_epoch and not self._multi_worker() else time.monotonic() - self.epoch_started
        if agreed(self.model.distribute_strategy, time.monotonic() - self.started + epoch_seconds >= self.seconds):
            print(f"  time budget of {self.seconds / 60:.1f} min reached after epoch {epoch + 1}", file=sys.stderr)
            self.model.stop_training = True
            self.stopped = True
            if self.best_weights is not None:
                self.model.set_weights(self.best_weights)
                self.restored_epoch = self.best_epoch


def callbacks(config: TrainingConfig, log_dir: str, log_every: int = 1) -> list:
    """The Trainer's callbacks; pass the list to finish_training after fit."""
    found = [EpochLine(log_every), keras.callbacks.TensorBoard(log_dir=log_dir, update_freq="epoch", profile_batch=0)]
    if config.early_stopping_patience > 0:
        if config.lr_schedule in ("time", "exponential"):
            found.append(
                AnnealedEarlyStopping(
                    config.early_stop_lr_fraction,
                    monitor="val_loss",
                    patience=config.early_stopping_patience,
                    restore_best_weights=True,
                )
            )
        else:
            found.append(
                keras.callbacks.EarlyStopping(
                    monitor="val_loss", patience=config.early_stopping_patience, restore_best_weights=True
                )
            )
    if config.time_budget_minutes > 0:
        found.append(TimeBudget(config.time_budget_minutes, within_epoch=config.lr_schedule == "time"))
    if config.lr_schedule == "plateau":
        found.append(
            keras.callbacks.ReduceLROnPlateau(
                monitor="val_loss",
                factor=config.lr_decay_rate,
                patience=max(1, config.early_stopping_patience // 2 or 1),
            )
        )
    end = TrainingEnd(list(found))
    found.insert(0, end)  # first: the learning rate is in the logs before the others see them
    return found


def record_training(used: list, history: dict[str, list[float]], fn_args, metrics: list[str], title: str) -> dict:
    """After fit: why training ended (training_end.json, printed), history.json and curves.png of
    `metrics` beside the loss, in the Trainer's model folder (`fn_args`: FnArgs). Returns the end summary."""
    end = finish_training(used, fn_args.training_end_path)
    write_history(history, fn_args.history_path)
    plot_curves(history, fn_args.curves_path, metrics, title, restored_epoch=end["restored_epoch"])
    return end


def write_history(history: dict[str, list[float]], path: str) -> None:
    clean = {k: [float(v) for v in values] for k, values in history.items()}
    with fileio.open(path, "w") as f:
        json.dump(clean, f, indent=2)


def plot_curves(
    history: dict[str, list[float]], path: str, metrics: list[str], title: str, restored_epoch: int | None = None
) -> None:
    """Train vs validation, one panel per metric (loss first), per epoch; the learning rate in a panel
    of its own; a dashed line at the epoch whose weights were restored."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [m for m in ["loss", *metrics, "lr"] if m in history]
    fig, axes = plt.subplots(1, len(names), figsize=(5 * len(names), 4), squeeze=False)
    for ax, name in zip(axes[0], names):
        epochs = range(1, len(history[name]) + 1)
        ax.plot(epochs, history[name], marker="o", label="learning rate" if name == "lr" else f"train {name}")
        if f"val_{name}" in history:
            ax.plot(epochs, history[f"val_{name}"], marker="o", label=f"validation {name}")
        if name == "lr":
            ax.set_yscale("log")
        if restored_epoch:
            ax.axvline(restored_epoch, color="grey", linestyle="--", label=f"restored (epoch {restored_epoch})")
        ax.set_xlabel("epoch")
        ax.set_title("learning rate" if name == "lr" else name.replace("_", " "))
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    with fileio.open(path, "wb") as f:
        fig.savefig(f, dpi=90, format="png")
    plt.close(fig)


def augment(
    images: tf.Tensor,
    shift: tuple[float, float] = (0.05, 0.04),
    max_degrees: float = 3.6,
    zoom: float = 0.05,
    noise: float = 0.02,
    shear: float = 0.0,
    stretch: float = 0.0,
) -> tf.Tensor:
    """Small shifts, rotations, zoom and noise: other renderings of the same characters.
    `shear` (a slant of up to that many columns per row) and `stretch` (the width alone scaled by up
    to 1 +- stretch) are off unless asked for (the captcha model asks, CaptchaTrainConfig).

    [batch, height, width, channels] ink intensity in, the same shape out. One random affine
    transform per image (rotation about the centre, zoom, shift by up to `shift` of the
    height and width), applied in a single resampling pass; Keras's RandomTranslation,
    RandomRotation and RandomZoom layers make three, and this runs on the cores that train.
    Uncovered pixels become 0, the blank page."""
    batch = tf.shape(images)[0]
    height, width = tf.cast(tf.shape(images)[1], tf.float32), tf.cast(tf.shape(images)[2], tf.float32)
    uniform = lambda limit: tf.random.uniform([batch], -limit, limit)
    angle = uniform(math.radians(max_degrees))
    scale = 1.0 + uniform(zoom)  # > 1 samples a larger area: the text looks smaller
    dy, dx = uniform(shift[0]) * height, uniform(shift[1]) * width
    cy, cx = (height - 1) / 2, (width - 1) / 2
    a0, a1 = scale * tf.cos(angle), -scale * tf.sin(angle)
    b0, b1 = scale * tf.sin(angle), scale * tf.cos(angle)
    if shear or stretch:  # x' = (1 + stretch) x + shear y, before the rotation's read
        across, slant = 1.0 + uniform(stretch), uniform(shear)
        a0, a1 = a0 * across, a1 + a0 * slant
        b0, b1 = b0 * across, b1 + b0 * slant
    # Output pixel (x, y) reads the input at (a0 x + a1 y + a2, b0 x + b1 y + b2).
    a2 = cx - a0 * cx - a1 * cy - dx
    b2 = cy - b0 * cx - b1 * cy - dy
    zeros = tf.zeros_like(angle)
    transforms = tf.stack([a0, a1, a2, b0, b1, b2, zeros, zeros], axis=1)
    moved = tf.raw_ops.ImageProjectiveTransformV3(
        images=images,
        transforms=transforms,
        output_shape=tf.shape(images)[1:3],
        fill_value=0.0,
        interpolation="BILINEAR",
        fill_mode="CONSTANT",
    )
    return moved + tf.random.normal(tf.shape(moved), stddev=noise)


def until_deadline(transform, deadline: float):
    """`transform` while the wall clock is before `deadline` (a time.time() value), the identity after.
    The clock is read in the graph (tf.timestamp) on every call, so a tf.data map built with it
    switches by itself in the middle of training, with no callback and no new iterator."""

    def maybe(x):
        return tf.cond(tf.timestamp() < deadline, lambda: transform(x), lambda: x)

    return maybe


def on_a_nonempty_batch(predict, images: tf.Tensor) -> tf.Tensor:
    """`predict(images)` for a batch that may hold no images: TensorFlow's oneDNN convolutions
    fail on an empty batch ("input depth must be evenly divisible by filter depth: 1 vs 8"), so a
    served signature asked about zero images answered INVALID_ARGUMENT, here and on TF Serving.
    An empty batch is run as one blank image and the answer cut back to no rows; any other batch
    is run as it is (a concatenation with a 0-row tensor)."""
    count = tf.shape(images)[0]
    blank = tf.zeros(tf.concat([[1 - tf.minimum(count, 1)], tf.shape(images)[1:]], axis=0), images.dtype)
    return predict(tf.concat([images, blank], axis=0))[:count]
