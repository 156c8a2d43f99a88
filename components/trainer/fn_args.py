"""What a pipeline's run_fn is given: where the data is, where to write, and its config."""

from __future__ import annotations

import dataclasses
import os

SERVING_DIR = "Format-Serving"
HISTORY_FILE = "history.json"
TRAINING_END_FILE = "training_end.json"  # why training stopped, at which rate, which epoch was restored
CURVES_FILE = "curves.png"
LOG_DIR = "logs"


@dataclasses.dataclass(frozen=True)
class FnArgs:
    train_files: str  # file pattern of transformed gzip TFRecords
    eval_files: str
    transform_graph_dir: str
    model_dir: str  # the Model artifact's folder
    config: dict
    model_name: str
    # Of the pipeline run's time budget, when training starts (None: the run has none).
    # A time-budgeted run_fn trains for no longer than this allows.
    seconds_left: float | None = None

    @property
    def serving_model_dir(self) -> str:
        return os.path.join(self.model_dir, SERVING_DIR)

    @property
    def history_path(self) -> str:
        return os.path.join(self.model_dir, HISTORY_FILE)

    @property
    def training_end_path(self) -> str:
        return os.path.join(self.model_dir, TRAINING_END_FILE)

    @property
    def curves_path(self) -> str:
        return os.path.join(self.model_dir, CURVES_FILE)

    @property
    def log_dir(self) -> str:
        return os.path.join(self.model_dir, LOG_DIR)
