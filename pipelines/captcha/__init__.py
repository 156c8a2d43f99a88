"""The flagship pipeline: generated 4-character captchas to a validated, transformed dataset (and, with
the Trainer, a versioned captcha recognizer)."""
from __future__ import annotations

import dataclasses
import json
import os

from components.example_gen import CaptchaExampleGen
from components.example_gen.captcha_source import ALPHANUMERIC, DIGITS, CaptchaConfig
from components.example_validator import ExampleValidator
from components.schema_gen import SchemaGen
from components.statistics_gen import StatisticsGen
from components.transform import Transform
from pipelines.config import apply_overrides
from pipelines.pipeline import Pipeline
from pipelines.registry import RunOptions

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCHEMA_PATH = os.path.join(REPO_ROOT, "schemas", "captcha", "schema.pbtxt")
CHARSETS = {"digits": DIGITS, "alphanumeric": ALPHANUMERIC}


@dataclasses.dataclass(frozen=True)
class CaptchaPipelineConfig:
    num_examples: int = 60_000
    quick_num_examples: int = 600
    seed: int = 42
    charset: str = "digits"  # digits | alphanumeric | the characters themselves
    length: int = 4
    width: int = 160
    height: int = 60
    image_height: int = 60  # model input size; images of any size are resized to it
    image_width: int = 160
    splits: str = "train:8,eval:1,test:1"
    stop_on_anomalies: bool = True

    @property
    def characters(self) -> str:
        return CHARSETS.get(self.charset, self.charset)

    def captcha_config(self) -> CaptchaConfig:
        return CaptchaConfig(charset=self.characters, length=self.length, width=self.width, height=self.height)


def create_pipeline(options: RunOptions) -> Pipeline:
    config = apply_overrides(CaptchaPipelineConfig(), options.params)
    config.captcha_config()  # validates charset, length and size
    example_gen = CaptchaExampleGen(
        num_examples=config.quick_num_examples if options.quick else config.num_examples,
        seed=config.seed,
        charset=config.characters,
        length=config.length,
        width=config.width,
        height=config.height,
        splits=config.splits,
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
    return Pipeline(
        "captcha",
        [example_gen, statistics_gen, schema_gen, example_validator, transform],
        summarize=summarize,
    )


def summarize(result) -> str:
    from pipelines.summary import data_summary

    return data_summary(result)
