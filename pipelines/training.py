"""The book's training techniques, shared by every pipeline's model: optimizers, learning-rate
schedules, early stopping, regularisation knobs, distribution strategies, and the training record
(history.json, curves.png, TensorBoard logs)."""
from __future__ import annotations

import dataclasses
import functools
import json
import os
import sys
import time

import tensorflow as tf
import tf_keras as keras

from components.base import fileio

OPTIMIZERS = ("adam", "rmsprop", "adagrad", "sgd")
LR_SCHEDULES = ("none", "exponential", "plateau", "time")
DISTRIBUTIONS = ("default", "mirrored", "multi_worker")


@dataclasses.dataclass(frozen=True)
class TrainingConfig:
    epochs: int = 20
    batch_size: int = 64
    optimizer: str = "adam"
    learning_rate: float = 1e-3
    lr_schedule: str = "plateau"  # time: falls linearly to lr_floor over time_budget_minutes of wall clock
    lr_decay_rate: float = 0.9  # exponential: factor per epoch; plateau: factor on a plateau
    lr_floor: float = 0.01  # time: the last learning rate, as a fraction of the first
    early_stopping_patience: int = 4  # epochs without val_loss improvement; 0 turns it off
    l2: float = 0.0
    dropout: float = 0.0
    distribution: str = "default"
    workers: int = 2  # distribution=multi_worker: how many TensorFlow workers (each its own host where possible)
    # lr_schedule=time: the wall-clock start (time.time()) the rate falls from; 0 = when training starts.
    # The multi-worker Trainer sets one for all workers, so every replica applies the same rate.
    lr_start: float = 0.0
    time_budget_minutes: float = 0.0  # stop after the epoch that crosses it; 0: no limit
    # In a pipeline run with a time budget: what the run needs after training (export,
    # evaluation, infra validation, push). The training budget shrinks to what is left.
    run_reserve_seconds: float = 90.0

    def __post_init__(self) -> None:
        checks = [
            (self.optimizer in OPTIMIZERS, f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}"),
            (self.lr_schedule in LR_SCHEDULES, f"lr_schedule must be one of {LR_SCHEDULES}, got {self.lr_schedule!r}"),
            (self.distribution in DISTRIBUTIONS, f"distribution must be one of {DISTRIBUTIONS}, got {self.distribution!r}"),
            (self.epochs >= 1, f"epochs must be >= 1, got {self.epochs}"),
            (self.workers >= 1, f"workers must be >= 1, got {self.workers}"),
            (self.batch_size >= 1, f"batch_size must be >= 1, got {self.batch_size}"),
            (self.learning_rate > 0, f"learning_rate must be > 0, got {self.learning_rate}"),
            (0 < self.lr_decay_rate <= 1, f"lr_decay_rate must be in (0, 1], got {self.lr_decay_rate}"),
            (self.l2 >= 0, f"l2 must be >= 0, got {self.l2}"),
            (0 <= self.dropout < 1, f"dropout must be in [0, 1), got {self.dropout}"),
            (self.time_budget_minutes >= 0, f"time_budget_minutes must be >= 0, got {self.time_budget_minutes}"),
            (0 <= self.lr_floor <= 1, f"lr_floor must be in [0, 1], got {self.lr_floor}"),
            (self.run_reserve_seconds >= 0, f"run_reserve_seconds must be >= 0, got {self.run_reserve_seconds}"),
            (
                self.lr_schedule != "time" or self.time_budget_minutes > 0,
                "lr_schedule=time needs a time_budget_minutes > 0 to decay over",
            ),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)

    @classmethod
    def from_dict(cls, values: dict):
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in names})

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)


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
        return {"initial_learning_rate": self.initial_learning_rate, "seconds": self.seconds, "floor": self.floor, "start": self.start}


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
        self.best, self.best_weights = float("inf"), None

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch_started = time.monotonic()

    def on_train_batch_end(self, batch, logs=None):
        # Within an epoch only on one worker: several would have to agree at every step.
        if self.within_epoch and time.monotonic() - self.started >= self.seconds and not self._multi_worker():
            self.model.stop_training = True

    def _multi_worker(self) -> bool:
        return self.model.distribute_strategy.extended._in_multi_worker_mode()  # noqa: SLF001

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is not None and value < self.best:
            self.best, self.best_weights = value, self.model.get_weights()
        epoch_seconds = 0.0 if self.within_epoch and not self._multi_worker() else time.monotonic() - self.epoch_started
        if agreed(self.model.distribute_strategy, time.monotonic() - self.started + epoch_seconds >= self.seconds):
            print(f"  time budget of {self.seconds / 60:.1f} min reached after epoch {epoch + 1}", file=sys.stderr)
            self.model.stop_training = True
            if self.best_weights is not None:
                self.model.set_weights(self.best_weights)


def callbacks(config: TrainingConfig, log_dir: str, log_every: int = 1) -> list:
    found = [EpochLine(log_every), keras.callbacks.TensorBoard(log_dir=log_dir, update_freq="epoch", profile_batch=0)]
    if config.early_stopping_patience > 0:
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
                monitor="val_loss", factor=config.lr_decay_rate, patience=max(1, config.early_stopping_patience // 2 or 1)
            )
        )
    return found


def write_history(history: dict[str, list[float]], path: str) -> None:
    clean = {k: [float(v) for v in values] for k, values in history.items()}
    with fileio.open(path, "w") as f:
        json.dump(clean, f, indent=2)


def plot_curves(history: dict[str, list[float]], path: str, metrics: list[str], title: str) -> None:
    """Train vs validation, one panel per metric (loss first), per epoch."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [m for m in ["loss", *metrics] if m in history]
    fig, axes = plt.subplots(1, len(names), figsize=(5 * len(names), 4), squeeze=False)
    for ax, name in zip(axes[0], names):
        epochs = range(1, len(history[name]) + 1)
        ax.plot(epochs, history[name], marker="o", label=f"train {name}")
        if f"val_{name}" in history:
            ax.plot(epochs, history[f"val_{name}"], marker="o", label=f"validation {name}")
        ax.set_xlabel("epoch")
        ax.set_title(name.replace("_", " "))
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    with fileio.open(path, "wb") as f:
        fig.savefig(f, dpi=90, format="png")
    plt.close(fig)
