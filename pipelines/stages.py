"""The two halves every pipeline shares, wired the same way: from raw Examples to transformed
data, and from transformed data to a published model. A pipeline supplies its ExampleGen and
its own functions (preprocessing, training, metrics)."""

from __future__ import annotations

import dataclasses
import json
import os

from components.base import BaseComponent
from components.evaluator import Evaluator
from components.evaluator import component as evaluator_keys
from components.example_gen import component as example_gen_keys
from components.example_validator import ExampleValidator
from components.infra_validator import InfraValidator
from components.infra_validator import component as infra_validator_keys
from components.pusher import Pusher
from components.schema_gen import SchemaGen
from components.schema_gen import component as schema_gen_keys
from components.statistics_gen import StatisticsGen
from components.statistics_gen import component as statistics_gen_keys
from components.trainer import Trainer
from components.trainer import component as trainer_keys
from components.transform import Transform
from components.transform import component as transform_keys


def data_stages(
    example_gen: BaseComponent,
    schema_path: str | None,
    stop_on_anomalies: bool,
    preprocessing_fn: str,
    preprocessing_params: dict | None = None,
    image_features: tuple[str, ...] = (),
) -> list[BaseComponent]:
    """StatisticsGen -> SchemaGen -> ExampleValidator, and Transform. `image_features` name the bytes
    features that hold encoded images (their sizes and intensity join the statistics)."""
    examples = example_gen.outputs[example_gen_keys.EXAMPLES_KEY]
    statistics_gen = StatisticsGen(examples=examples, image_features=",".join(image_features))
    schema_gen = SchemaGen(
        statistics=statistics_gen.outputs[statistics_gen_keys.STATISTICS_KEY], schema_path=schema_path
    )
    example_validator = ExampleValidator(
        statistics=statistics_gen.outputs[statistics_gen_keys.STATISTICS_KEY],
        schema=schema_gen.outputs[schema_gen_keys.SCHEMA_KEY],
        environment="TRAINING",
        stop_on_anomalies=stop_on_anomalies,
    )
    transform = Transform(
        examples=examples,
        schema=schema_gen.outputs[schema_gen_keys.SCHEMA_KEY],
        preprocessing_fn=preprocessing_fn,
        preprocessing_params=json.dumps(preprocessing_params or {}, sort_keys=True),
    )
    return [statistics_gen, schema_gen, example_validator, transform]


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """What a pipeline says about its model: how to train it, measure it and call it."""

    name: str
    run_fn: str
    train_config_json: str
    evaluate_fn: str
    thresholds: dict
    comparison_metric: str
    higher_is_better: bool
    tolerance: float
    input_mapping: dict  # serving_default input -> raw feature, for the InfraValidator's requests
    keep_versions: int = 5


def delivery_stages(
    example_gen: BaseComponent, transform: BaseComponent, model: ModelSpec, serving_dir: str
) -> list[BaseComponent]:
    """Trainer -> Evaluator and InfraValidator -> Pusher."""
    serving_dir = os.path.abspath(serving_dir)
    trainer = Trainer(
        examples=transform.outputs[transform_keys.TRANSFORMED_EXAMPLES_KEY],
        transform_graph=transform.outputs[transform_keys.TRANSFORM_GRAPH_KEY],
        run_fn=model.run_fn,
        train_config=model.train_config_json,
        model_name=model.name,
    )
    evaluator = Evaluator(
        examples=example_gen.outputs[example_gen_keys.EXAMPLES_KEY],
        model=trainer.outputs[trainer_keys.MODEL_KEY],
        evaluate_fn=model.evaluate_fn,
        thresholds=json.dumps(model.thresholds),
        comparison_metric=model.comparison_metric,
        higher_is_better=model.higher_is_better,
        tolerance=model.tolerance,
        baseline_dir=os.path.join(serving_dir, model.name),
    )
    infra_validator = InfraValidator(
        examples=example_gen.outputs[example_gen_keys.EXAMPLES_KEY],
        model=trainer.outputs[trainer_keys.MODEL_KEY],
        input_mapping=json.dumps(model.input_mapping),
    )
    pusher = Pusher(
        model=trainer.outputs[trainer_keys.MODEL_KEY],
        model_blessing=evaluator.outputs[evaluator_keys.BLESSING_KEY],
        infra_blessing=infra_validator.outputs[infra_validator_keys.BLESSING_KEY],
        serving_dir=serving_dir,
        model_name=model.name,
        keep_versions=model.keep_versions,
    )
    return [trainer, evaluator, infra_validator, pusher]
