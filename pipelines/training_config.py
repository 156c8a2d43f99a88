"""What a training run takes: the settings every model's config extends, checked when made.

Plain Python, no TensorFlow: `pipelines run` checks a --param against these before it imports the
libraries a run needs, so a typo is refused in a fraction of a second (pipelines/training.py trains)."""

from __future__ import annotations

import dataclasses
import json

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
    # With a schedule that falls (time, exponential), early stopping may end training only once the
    # learning rate is at or below this fraction of its peak: a model stopped while the rate is
    # still high is a worse model, and a faster machine reaches that point sooner.
    early_stop_lr_fraction: float = 0.1
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
            (
                self.distribution in DISTRIBUTIONS,
                f"distribution must be one of {DISTRIBUTIONS}, got {self.distribution!r}",
            ),
            (self.epochs >= 1, f"epochs must be >= 1, got {self.epochs}"),
            (self.workers >= 1, f"workers must be >= 1, got {self.workers}"),
            (self.batch_size >= 1, f"batch_size must be >= 1, got {self.batch_size}"),
            (
                self.early_stopping_patience >= 0,
                f"early_stopping_patience must be >= 0 (0: off), got {self.early_stopping_patience}",
            ),
            (self.learning_rate > 0, f"learning_rate must be > 0, got {self.learning_rate}"),
            (0 < self.lr_decay_rate <= 1, f"lr_decay_rate must be in (0, 1], got {self.lr_decay_rate}"),
            (self.l2 >= 0, f"l2 must be >= 0, got {self.l2}"),
            (0 <= self.dropout < 1, f"dropout must be in [0, 1), got {self.dropout}"),
            (self.time_budget_minutes >= 0, f"time_budget_minutes must be >= 0, got {self.time_budget_minutes}"),
            (0 <= self.lr_floor <= 1, f"lr_floor must be in [0, 1], got {self.lr_floor}"),
            (
                0 <= self.early_stop_lr_fraction <= 1,
                f"early_stop_lr_fraction must be in [0, 1], got {self.early_stop_lr_fraction}",
            ),
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
