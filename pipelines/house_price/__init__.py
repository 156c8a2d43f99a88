"""House-price regression on a CSV (area, bedrooms -> price): the book's linear model, TFX-style."""

from __future__ import annotations

import dataclasses
import os

from components.example_gen import CsvExampleGen
from pipelines.config import apply_overrides
from pipelines.house_price.train_config import HousePriceTrainConfig
from pipelines.pipeline import Pipeline
from pipelines.registry import RunOptions
from pipelines.stages import ModelSpec, data_stages, delivery_stages

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCHEMA_PATH = os.path.join(REPO_ROOT, "schemas", "house_price", "schema.pbtxt")
DEFAULT_DATA = os.path.join(os.path.dirname(REPO_ROOT), "shared", "data", "house_price", "data1.csv")
MODEL_NAME = "house_price"


@dataclasses.dataclass(frozen=True)
class HousePricePipelineConfig(HousePriceTrainConfig):
    """Every knob of the house-price pipeline; `--param NAME=VALUE` overrides any of them."""

    splits: str = "train:8,eval:1,test:1"
    stop_on_anomalies: bool = True
    tolerance: float = 0.01
    keep_versions: int = 5
    model_name: str = MODEL_NAME

    def train_config(self) -> HousePriceTrainConfig:
        return HousePriceTrainConfig.from_dict(dataclasses.asdict(self))


QUICK = {"epochs": 100}


def create_pipeline(options: RunOptions) -> Pipeline:
    defaults = HousePricePipelineConfig()
    if options.quick:
        defaults = dataclasses.replace(defaults, **QUICK)
    config = apply_overrides(defaults, options.params)
    data = options.data or (DEFAULT_DATA if os.path.isfile(DEFAULT_DATA) else None)
    if data is None:
        raise ValueError("house_price needs a CSV: --data FILE.csv (columns area, bedrooms, price)")
    if not os.path.isfile(data):
        raise ValueError(f"house_price reads one CSV file; {data} is not a file")
    example_gen = CsvExampleGen(input_path=os.path.abspath(data), schema_path=SCHEMA_PATH, splits=config.splits)
    data = data_stages(
        example_gen, SCHEMA_PATH, config.stop_on_anomalies, "pipelines.house_price.preprocessing:make_preprocessing_fn"
    )
    model = ModelSpec(
        name=config.model_name,
        run_fn="pipelines.house_price.model:run_fn",
        train_config_json=config.train_config().to_json(),
        evaluate_fn="pipelines.house_price.evaluation:evaluate",
        thresholds={"rmse": {"max_metric": "baseline_rmse"}},
        comparison_metric="rmse",
        higher_is_better=False,
        tolerance=config.tolerance,
        input_mapping={"area": "area", "bedrooms": "bedrooms"},
        keep_versions=config.keep_versions,
    )
    delivery = delivery_stages(example_gen, data[-1], model, options.serving_dir)
    return Pipeline("house_price", [example_gen, *data, *delivery], summarize=summarize, primary_metric="rmse")


def summarize(result) -> str:
    from pipelines.summary import run_summary

    return run_summary(result)
