"""The flagship pipeline: generated 4-character captchas to a validated, transformed dataset (and, with
the Trainer, a versioned captcha recognizer)."""

from __future__ import annotations

import dataclasses
import os

from components.example_gen import CaptchaExampleGen
from components.example_gen.captcha_source import (
    ALPHANUMERIC,
    DIGITS,
    TRAINING_STYLE,
    UNAMBIGUOUS,
    CaptchaConfig,
    RenderStyle,
)
from pipelines.captcha.train_config import CaptchaTrainConfig
from pipelines.config import apply_overrides
from pipelines.pipeline import Pipeline
from pipelines.registry import RunOptions
from pipelines.stages import ModelSpec, data_stages, delivery_stages

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCHEMA_PATH = os.path.join(REPO_ROOT, "schemas", "captcha", "schema.pbtxt")
CHARSETS = {"digits": DIGITS, "alphanumeric": ALPHANUMERIC, "unambiguous": UNAMBIGUOUS}
# The Evaluator's bar on the test split when min_full_string_accuracy is not given. Digits: a
# default run reads 0.97 of its own test split since the training family has other generators'
# clutter (0.99 before; the same model reads the family without the clutter at 0.992), and 0.96
# with half the training budget (BENCHMARKS.md, #14). 36 classes per character are harder (0.91 in
# the same budget, two thirds of the errors 0/O and 1/I), 32 without those four less so (0.966).
# Other charsets: 0.90.
MIN_FULL_STRING_ACCURACY = {"digits": 0.95, "alphanumeric": 0.95, "unambiguous": 0.95}


MODEL_NAME = "captcha"


# The model's input side at most: every captcha is resized to it, and the first convolution's
# activations grow with its area (the default is 40x108).
MAX_MODEL_SIDE = 512


@dataclasses.dataclass(frozen=True)
class CaptchaPipelineConfig(CaptchaTrainConfig):
    """Every knob of the captcha pipeline; `--param NAME=VALUE` overrides any of them."""

    charset: str = "digits"  # digits | alphanumeric | unambiguous | the characters themselves
    num_examples: int = 60_000
    seed: int = 42
    width: int = 160
    height: int = 60
    # How the captchas are drawn: a preset of components/example_gen/captcha_source.STYLES
    # (library | varied | heldout_*) or a JSON object of RenderStyle fields over `varied`.
    render_style: str = TRAINING_STYLE
    # Model input size; images of any size are resized to it. 40x108 rather than 30x80: with the
    # varied renderings, test full-string 0.989 against 0.983 in the same budget, and the package's
    # own renderings 0.982 against 0.967 (most of the difference '1' read as '7': the foot of
    # DroidSansMono's '1' is one pixel high at 30x80). BENCHMARKS.md, issue #14.
    image_height: int = 40
    image_width: int = 108
    splits: str = "train:8,eval:1,test:1"
    render_workers: int = 2  # DirectRunner processes for ExampleGen
    stop_on_anomalies: bool = True
    min_full_string_accuracy: float | None = None  # None: MIN_FULL_STRING_ACCURACY for the charset
    tolerance: float = 0.005
    keep_versions: int = 5
    model_name: str = MODEL_NAME
    # The whole run's target (the issue asks for 20 minutes on 2 cores): training gets what the
    # data stages leave, up to time_budget_minutes; 0 turns this off.
    run_budget_minutes: float = 18.5

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.run_budget_minutes < 0:
            raise ValueError(f"run_budget_minutes must be >= 0, got {self.run_budget_minutes}")
        smallest = 2 ** len(self.filters)  # each conv block halves the image; a pixel must be left
        if min(self.image_height, self.image_width) < smallest:
            raise ValueError(
                f"image_height and image_width must be at least {smallest} for {len(self.filters)} conv blocks, "
                f"got {self.image_height}x{self.image_width}"
            )
        if max(self.image_height, self.image_width) > MAX_MODEL_SIDE:
            raise ValueError(
                f"image_height and image_width must be at most {MAX_MODEL_SIDE}, got {self.image_height}x{self.image_width}"
            )
        if self.min_full_string_accuracy is not None and not 0 <= self.min_full_string_accuracy <= 1:
            raise ValueError(f"min_full_string_accuracy must be within [0, 1], got {self.min_full_string_accuracy}")
        RenderStyle.parse(self.render_style)

    def train_config(self) -> CaptchaTrainConfig:
        return CaptchaTrainConfig.from_dict({**dataclasses.asdict(self), "charset": self.characters})

    @property
    def characters(self) -> str:
        return CHARSETS.get(self.charset, self.charset)

    @property
    def accuracy_bar(self) -> float:
        if self.min_full_string_accuracy is not None:
            return self.min_full_string_accuracy
        return MIN_FULL_STRING_ACCURACY.get(self.charset, 0.90)

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
        render_style=config.render_style,
        splits=config.splits,
    )
    if not options.quick and config.render_workers > 1:
        # Rendering is CPU-bound Python: worker processes pay off despite their start-up cost.
        example_gen.with_beam_pipeline_args(
            [f"--direct_num_workers={config.render_workers}", "--direct_running_mode=multi_processing"]
        )
    data = data_stages(
        example_gen,
        SCHEMA_PATH,
        config.stop_on_anomalies,
        "pipelines.captcha.preprocessing:make_preprocessing_fn",
        {
            "charset": config.characters,
            "length": config.length,
            "image_height": config.image_height,
            "image_width": config.image_width,
        },
        image_features=("image",),
    )
    model = ModelSpec(
        name=config.model_name,
        run_fn="pipelines.captcha.model:run_fn",
        train_config_json=train_config.to_json(),
        evaluate_fn="pipelines.captcha.evaluation:evaluate",
        thresholds={"full_string_accuracy": {"min": config.accuracy_bar}},
        comparison_metric="full_string_accuracy",
        higher_is_better=True,
        tolerance=config.tolerance,
        input_mapping={"image_bytes": "image"},
        keep_versions=config.keep_versions,
    )
    delivery = delivery_stages(example_gen, data[-1], model, options.serving_dir)
    return Pipeline(
        "captcha",
        [example_gen, *data, *delivery],
        summarize=summarize,
        primary_metric="full_string_accuracy",
        time_budget_minutes=config.run_budget_minutes or None,
    )


def summarize(result) -> str:
    from pipelines.summary import run_summary

    return run_summary(result)
