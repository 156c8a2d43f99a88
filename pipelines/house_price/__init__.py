"""House-price regression on a CSV (area, bedrooms -> price): the book's linear model, TFX-style."""
from __future__ import annotations

import dataclasses
import json
import os

from components.evaluator import Evaluator
from components.example_gen import CsvExampleGen
from components.example_validator import ExampleValidator
from components.infra_validator import InfraValidator
from components.pusher import Pusher
from components.schema_gen import SchemaGen
from components.statistics_gen import StatisticsGen
from components.trainer import Trainer
from components.transform import Transform
from pipelines.house_price.model import HousePriceTrainConfig
from pipelines.config import apply_overrides
from pipelines.pipeline import Pipeline
from pipelines.registry import RunOptions

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
        names = {f.name for f in dataclasses.fields(HousePriceTrainConfig)}
        return HousePriceTrainConfig(**{k: v for k, v in dataclasses.asdict(self).items() if k in names})


QUICK = {"epochs": 100}


def create_pipeline(options: RunOptions) -> Pipeline:
    defaults = HousePricePipelineConfig()
    if options.quick:
        defaults = dataclasses.replace(defaults, **QUICK)
    config = apply_overrides(defaults, options.params)
    data = options.data or (DEFAULT_DATA if os.path.isfile(DEFAULT_DATA) else None)
    if data is None:
        raise ValueError("house_price needs a CSV: --data FILE.csv (columns area, bedrooms, price)")
    example_gen = CsvExampleGen(input_path=os.path.abspath(data), schema_path=SCHEMA_PATH, splits=config.splits)
    statistics_gen = StatisticsGen(examples=example_gen.outputs["examples"])
    schema_gen = SchemaGen(statistics=statistics_gen.outputs["statistics"], schema_path=SCHEMA_PATH)
    example_validator = ExampleValidator(
        statistics=statistics_gen.outputs["statistics"],
        schema=schema_gen.outputs["schema"],
        environment="TRAINING",
        stop_on_anomalies=config.stop_on_anomalies,
    )
    transform = Transform(
        examples=example_gen.outputs["examples"],
        schema=schema_gen.outputs["schema"],
        preprocessing_fn="pipelines.house_price.preprocessing:make_preprocessing_fn",
    )
    trainer = Trainer(
        examples=transform.outputs["transformed_examples"],
        transform_graph=transform.outputs["transform_graph"],
        run_fn="pipelines.house_price.model:run_fn",
        train_config=config.train_config().to_json(),
        model_name=config.model_name,
    )
    evaluator = Evaluator(
        examples=example_gen.outputs["examples"],
        model=trainer.outputs["model"],
        evaluate_fn="pipelines.house_price.evaluation:evaluate",
        thresholds=json.dumps({"rmse": {"max_metric": "baseline_rmse"}}),
        comparison_metric="rmse",
        higher_is_better=False,
        tolerance=config.tolerance,
        baseline_dir=os.path.join(os.path.abspath(options.serving_dir), config.model_name),
    )
    infra_validator = InfraValidator(
        examples=example_gen.outputs["examples"],
        model=trainer.outputs["model"],
        input_mapping=json.dumps({"area": "area", "bedrooms": "bedrooms"}),
    )
    pusher = Pusher(
        model=trainer.outputs["model"],
        model_blessing=evaluator.outputs["blessing"],
        infra_blessing=infra_validator.outputs["blessing"],
        serving_dir=os.path.abspath(options.serving_dir),
        model_name=config.model_name,
        keep_versions=config.keep_versions,
    )
    return Pipeline(
        "house_price",
        [example_gen, statistics_gen, schema_gen, example_validator, transform, trainer, evaluator, infra_validator, pusher],
        summarize=summarize,
        primary_metric="rmse",
    )


def summarize(result) -> str:
    from pipelines.summary import run_summary

    return run_summary(result)
