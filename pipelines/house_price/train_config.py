"""The house-price models' settings, checked when made: plain Python, so that `pipelines run` refuses a bad --param before
it imports TensorFlow (pipelines/house_price/model.py builds and trains the model)."""

from __future__ import annotations

import dataclasses

from pipelines.training_config import TrainingConfig

MODELS = ("linear", "dnn")


@dataclasses.dataclass(frozen=True)
class HousePriceTrainConfig(TrainingConfig):
    model: str = "linear"
    hidden_units: str = "16,8"  # dnn only
    epochs: int = 400
    batch_size: int = 64
    learning_rate: float = 0.05
    lr_schedule: str = "none"
    early_stopping_patience: int = 0  # the book fits the whole training set

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.model not in MODELS:
            raise ValueError(f"model must be one of {MODELS}, got {self.model!r}")

    @property
    def units(self) -> list[int]:
        return [int(u) for u in str(self.hidden_units).split(",") if u.strip()]
