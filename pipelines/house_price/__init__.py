"""House-price regression on a CSV (area, bedrooms -> price): the book's linear model, TFX-style."""
from __future__ import annotations

import dataclasses
import os

from components.example_gen import CsvExampleGen
from components.example_validator import ExampleValidator
from components.schema_gen import SchemaGen
from components.statistics_gen import StatisticsGen
from components.transform import Transform
from pipelines.config import apply_overrides
from pipelines.pipeline import Pipeline
from pipelines.registry import RunOptions

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCHEMA_PATH = os.path.join(REPO_ROOT, "schemas", "house_price", "schema.pbtxt")
DEFAULT_DATA = os.path.join(os.path.dirname(REPO_ROOT), "shared", "data", "house_price", "data1.csv")


@dataclasses.dataclass(frozen=True)
class HousePricePipelineConfig:
    splits: str = "train:8,eval:1,test:1"
    stop_on_anomalies: bool = True


def create_pipeline(options: RunOptions) -> Pipeline:
    config = apply_overrides(HousePricePipelineConfig(), options.params)
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
    return Pipeline(
        "house_price",
        [example_gen, statistics_gen, schema_gen, example_validator, transform],
        summarize=summarize,
    )


def summarize(result) -> str:
    from pipelines.summary import data_summary

    return data_summary(result)
