"""The flagship pipeline: generated 4-character captchas to a validated, transformed dataset (and, with
the Trainer, a versioned captcha recognizer)."""
from __future__ import annotations

import dataclasses
import json
import os

from components.evaluator import Evaluator
from components.example_gen import CaptchaExampleGen
from components.example_gen.captcha_source import ALPHANUMERIC, DIGITS, CaptchaConfig
from components.example_validator import ExampleValidator
from components.infra_validator import InfraValidator
from components.pusher import Pusher
from components.schema_gen import SchemaGen
from components.statistics_gen import StatisticsGen
from components.trainer import Trainer
from components.transform import Transform
from pipelines.captcha.model import CaptchaTrainConfig
from pipelines.config import apply_overrides
from pipelines.pipeline import Pipeline
from pipelines.registry import RunOptions

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCHEMA_PATH = os.path.join(REPO_ROOT, "schemas", "captcha", "schema.pbtxt")
CHARSETS = {"digits": DIGITS, "alphanumeric": ALPHANUMERIC}


MODEL_NAME = "captcha"


@dataclasses.dataclass(frozen=True)
class CaptchaPipelineConfig(CaptchaTrainConfig):
    """Every knob of the captcha pipeline; `--param NAME=VALUE` overrides any of them."""

    charset: str = "digits"  # digits | alphanumeric | the characters themselves
    num_examples: int = 60_000
    seed: int = 42
    width: int = 160
    height: int = 60
    image_height: int = 30  # model input size; images of any size are resized to it
    image_width: int = 80
    splits: str = "train:8,eval:1,test:1"
    render_workers: int = 2  # DirectRunner processes for ExampleGen
    stop_on_anomalies: bool = True
    min_full_string_accuracy: float = 0.95
    tolerance: float = 0.005
    keep_versions: int = 5
    model_name: str = MODEL_NAME

    def train_config(self) -> CaptchaTrainConfig:
        names = {f.name for f in dataclasses.fields(CaptchaTrainConfig)}
        values = {k: v for k, v in dataclasses.asdict(self).items() if k in names}
        return CaptchaTrainConfig(**{**values, "charset": self.characters})


    @property
    def characters(self) -> str:
        return CHARSETS.get(self.charset, self.charset)

    def captcha_config(self) -> CaptchaConfig:
        return CaptchaConfig(charset=self.characters, length=self.length, width=self.width, height=self.height)


# --quick: a small end-to-end run that exercises every component (minutes). Its model is
# not expected to read captchas, so it is blessed on loading and answering alone.
QUICK = {"num_examples": 600, "epochs": 2, "min_full_string_accuracy": 0.0}


def create_pipeline(options: RunOptions) -> Pipeline:
    defaults = dataclasses.replace(CaptchaPipelineConfig(), **QUICK) if options.quick else CaptchaPipelineConfig()
    config = apply_overrides(defaults, options.params)
    config.captcha_config()  # validates charset, length and size
    train_config = config.train_config()
    example_gen = CaptchaExampleGen(
        num_examples=config.num_examples,
        seed=config.seed,
        charset=config.characters,
        length=config.length,
        width=config.width,
        height=config.height,
        splits=config.splits,
    )
    if not options.quick and config.render_workers > 1:
        # Rendering is CPU-bound Python: worker processes pay off despite their start-up cost.
        example_gen.with_beam_pipeline_args(
            [f"--direct_num_workers={config.render_workers}", "--direct_running_mode=multi_processing"]
        )
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
        preprocessing_fn="pipelines.captcha.preprocessing:make_preprocessing_fn",
        preprocessing_params=json.dumps(
            {
                "charset": config.characters,
                "length": config.length,
                "image_height": config.image_height,
                "image_width": config.image_width,
            },
            sort_keys=True,
        ),
    )
    trainer = Trainer(
        examples=transform.outputs["transformed_examples"],
        transform_graph=transform.outputs["transform_graph"],
        run_fn="pipelines.captcha.model:run_fn",
        train_config=train_config.to_json(),
        model_name=config.model_name,
    )
    base_path = os.path.join(os.path.abspath(options.serving_dir), config.model_name)
    evaluator = Evaluator(
        examples=example_gen.outputs["examples"],
        model=trainer.outputs["model"],
        evaluate_fn="pipelines.captcha.evaluation:evaluate",
        thresholds=json.dumps({"full_string_accuracy": {"min": config.min_full_string_accuracy}}),
        comparison_metric="full_string_accuracy",
        higher_is_better=True,
        tolerance=config.tolerance,
        baseline_dir=base_path,
    )
    infra_validator = InfraValidator(
        examples=example_gen.outputs["examples"],
        model=trainer.outputs["model"],
        input_mapping=json.dumps({"image_bytes": "image"}),
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
        "captcha",
        [
            example_gen,
            statistics_gen,
            schema_gen,
            example_validator,
            transform,
            trainer,
            evaluator,
            infra_validator,
            pusher,
        ],
        summarize=summarize,
        primary_metric="full_string_accuracy",
    )


def summarize(result) -> str:
    from pipelines.summary import run_summary

    return run_summary(result)
