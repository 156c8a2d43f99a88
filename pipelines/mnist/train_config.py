"""The MNIST models' settings, checked when made: plain Python, so that `pipelines run` refuses a bad --param before
it imports TensorFlow (pipelines/mnist/model.py builds and trains the model)."""

from __future__ import annotations

import dataclasses

from pipelines.training_config import TrainingConfig

MODELS = ("softmax", "cnn")


@dataclasses.dataclass(frozen=True)
class MnistTrainConfig(TrainingConfig):
    model: str = "cnn"  # softmax: the book's softmax regression; cnn: its two conv layers + dense
    conv_filters: str = "32,64"  # cnn: one 5x5 conv + 2x2 max-pool per entry
    dense_units: int = 256  # cnn
    dropout: float = 0.4  # cnn, before the last layer
    epochs: int = 30
    batch_size: int = 64
    learning_rate: float = 1e-3
    lr_schedule: str = "exponential"
    lr_decay_rate: float = 0.85  # per epoch: the rate is 10% of its peak after 14 epochs
    early_stopping_patience: int = 4
    augment: bool = True  # small shifts, rotations, zoom and noise (cnn; the softmax default turns it off)
    # A guard, not the plan: the default run ends by its epochs and early stopping in about
    # 5 minutes on 2 cores (BENCHMARKS.md); this keeps a much slower machine under 10.
    time_budget_minutes: float = 8.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.model not in MODELS:
            raise ValueError(f"model must be one of {MODELS}, got {self.model!r}")
        if not self.filters or any(f <= 0 for f in self.filters):
            raise ValueError(f"conv_filters must be positive integers, got {self.conv_filters!r}")
        if self.dense_units < 1:
            raise ValueError(f"dense_units must be >= 1, got {self.dense_units}")

    @property
    def filters(self) -> list[int]:
        return [int(f) for f in str(self.conv_filters).split(",") if f.strip()]


# Defaults that differ by model; a --param the user gives wins over them.
MODEL_DEFAULTS = {
    "softmax": {"augment": False, "learning_rate": 5e-3, "l2": 1e-5, "dropout": 0.0},
    "cnn": {},
}
