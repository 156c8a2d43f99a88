"""MNIST from the book: softmax regression or a CNN on handwritten digits, served so that
TensorFlow Serving's own MNIST clients work unchanged (pipelines/mnist/model.py).

Data: a folder of MNIST's IDX files (`--data DIR`; default `../shared/data/mnist` or
$MNIST_DATA). With only the 10,000 t10k images, the splits come from them by key hash
(80/10/10); with the 60,000 train images too, train and eval come from those and test is
t10k. A folder of digit images (`<digit>.png`, `<digit>_<n>.png` or one subfolder per
digit) is read by ImageExampleGen instead.
"""

from __future__ import annotations

import dataclasses
import os

from components.example_gen import IdxExampleGen, ImageExampleGen
from pipelines.config import apply_overrides
from pipelines.mnist.train_config import MODEL_DEFAULTS, MnistTrainConfig
from pipelines.pipeline import Pipeline
from pipelines.registry import RunOptions
from pipelines.stages import ModelSpec, data_stages, delivery_stages

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCHEMA_PATH = os.path.join(REPO_ROOT, "schemas", "mnist", "schema.pbtxt")
DEFAULT_DATA = os.environ.get("MNIST_DATA") or os.path.join(os.path.dirname(REPO_ROOT), "shared", "data", "mnist")
MODEL_NAME = "mnist"  # the name TF Serving's MNIST tutorial and its clients use
# Served names per model: the softmax model is published beside the CNN, not compared against it.
MODEL_NAMES = {"cnn": MODEL_NAME, "softmax": "mnist_softmax"}
# The Evaluator's bar on the test split, per model, when min_accuracy is not given: the book's
# figures on the full data set are about 0.92 and 0.99; with 8,000 training images 0.90 and 0.98.
MIN_ACCURACY = {"softmax": 0.90, "cnn": 0.98}


@dataclasses.dataclass(frozen=True)
class MnistPipelineConfig(MnistTrainConfig):
    """Every knob of the MNIST pipeline; `--param NAME=VALUE` overrides any of them."""

    splits: str = "train:8,eval:1,test:1"  # with train-* files present: train and eval share them, test is t10k
    stop_on_anomalies: bool = True
    min_accuracy: float | None = None  # None: MIN_ACCURACY of the model
    tolerance: float = 0.002
    keep_versions: int = 5
    model_name: str = MODEL_NAME
    max_image_pixels: int = 0  # 0: pipelines.images.DEFAULT_MAX_IMAGE_PIXELS

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.min_accuracy is not None and not 0 <= self.min_accuracy <= 1:
            raise ValueError(f"min_accuracy must be within [0, 1], got {self.min_accuracy}")
        if self.max_image_pixels < 0:
            raise ValueError(f"max_image_pixels must be >= 0 (0: the default), got {self.max_image_pixels}")

    def train_config(self) -> MnistTrainConfig:
        return MnistTrainConfig.from_dict(dataclasses.asdict(self))

    @property
    def accuracy_bar(self) -> float:
        return self.min_accuracy if self.min_accuracy is not None else MIN_ACCURACY[self.model]


# --quick: every component on a few epochs; blessed on loading and answering alone.
QUICK = {"epochs": 2, "min_accuracy": 0.0}


def example_gen_for(data: str, splits: str):
    """IdxExampleGen for a folder of IDX files, ImageExampleGen for a folder of digit images."""
    from components.example_gen.idx_source import IdxError, find_sets  # local files: no TensorFlow

    if not os.path.isdir(data):
        raise ValueError(f"mnist reads a folder (IDX files or digit images); {data} is not one")
    try:
        for pair in find_sets(data).values():
            pair.load()  # a bad file is one clear line now, not a failed component later
    except IdxError as error:
        if any(name.lower().endswith(("-ubyte", "-ubyte.gz")) for name in os.listdir(data)):
            raise ValueError(str(error)) from None
        return ImageExampleGen(input_path=data, splits=splits)
    return IdxExampleGen(input_path=data, splits=splits)


def create_pipeline(options: RunOptions) -> Pipeline:
    model = options.params.get("model", MnistPipelineConfig.model)
    defaults = dataclasses.replace(
        MnistPipelineConfig(), **MODEL_DEFAULTS.get(model, {}), model_name=MODEL_NAMES.get(model, MODEL_NAME)
    )
    if options.quick:
        defaults = dataclasses.replace(defaults, **QUICK)
    config = apply_overrides(defaults, options.params)
    data = os.path.abspath(options.data or DEFAULT_DATA)
    if not os.path.exists(data):
        raise ValueError(
            f"mnist needs MNIST's IDX files: --data DIR with t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz "
            f"(and train-* for the full set), or MNIST_DATA=DIR; {data} does not exist"
        )
    example_gen = example_gen_for(data, config.splits)
    stages = data_stages(
        example_gen,
        SCHEMA_PATH,
        config.stop_on_anomalies,
        "pipelines.mnist.preprocessing:make_preprocessing_fn",
        {"max_image_pixels": config.max_image_pixels},
        image_features=("image",),
    )
    spec = ModelSpec(
        name=config.model_name,
        run_fn="pipelines.mnist.model:run_fn",
        train_config_json=config.train_config().to_json(),
        evaluate_fn="pipelines.mnist.evaluation:evaluate",
        thresholds={"accuracy": {"min": config.accuracy_bar}},
        comparison_metric="accuracy",
        higher_is_better=True,
        tolerance=config.tolerance,
        input_mapping={"image_bytes": "image"},
        keep_versions=config.keep_versions,
    )
    delivery = delivery_stages(example_gen, stages[-1], spec, options.serving_dir)
    return Pipeline("mnist", [example_gen, *stages, *delivery], summarize=summarize, primary_metric="accuracy")


def summarize(result) -> str:
    from pipelines.summary import run_summary

    return run_summary(result)
