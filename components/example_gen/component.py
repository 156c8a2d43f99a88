"""ExampleGen: raw data in, gzip TFRecords of tf.train.Example out, split by key hash.

Three sources, one output contract (`examples`: Examples with one
`Split-<name>/` folder per split):
- CaptchaExampleGen renders `num_examples` captchas in a `render_style` (features `image`: PNG or JPEG, `label`: text);
- CsvExampleGen reads a CSV (header row, or column names from `schema_path`);
- ImageExampleGen reads an image folder (`<label>.<ext>` files or one subfolder per label);
- IdxExampleGen reads MNIST's IDX files (features `image`: PNG, `label`: the digit as text).
"""

from components.base import BaseComponent, ComponentSpec, Examples, Parameter
from components.base.component import ExecutorRef, within
from components.example_gen.splits import DEFAULT_SPLITS, SplitConfig

# The keys of its inputs, outputs and parameters: the executor and the pipelines use these names.
NUM_EXAMPLES_KEY = "num_examples"
SEED_KEY = "seed"
CHARSET_KEY = "charset"
LENGTH_KEY = "length"
WIDTH_KEY = "width"
HEIGHT_KEY = "height"
RENDER_STYLE_KEY = "render_style"
INPUT_PATH_KEY = "input_path"
SCHEMA_PATH_KEY = "schema_path"
SPLIT_KEY_KEY = "split_key"
TEST_SPLIT_KEY = "test_split"
EXAMPLES_KEY = "examples"
SPLITS_KEY = "splits"

# Rendering 10 million captchas takes days on a few cores and ~40 GB; past it, a typo is likelier than
# a plan (a thousand billion made Beam's Create raise MemoryError after the run had been recorded).
MAX_EXAMPLES = 10_000_000


def _splits_problem(text: str) -> str | None:
    try:
        SplitConfig.parse(text)
    except ValueError as error:
        return f"is not a split list: {error}"
    return None


_SPLITS = Parameter(str, DEFAULT_SPLITS, "name:weight pairs, e.g. train:8,eval:1,test:1", check=_splits_problem)


class CaptchaExampleGen(BaseComponent):
    SPEC = ComponentSpec(
        outputs={EXAMPLES_KEY: Examples},
        parameters={
            NUM_EXAMPLES_KEY: Parameter(int, 10_000, check=within(1, MAX_EXAMPLES)),
            SEED_KEY: Parameter(int, 0),
            CHARSET_KEY: Parameter(str, "0123456789"),
            LENGTH_KEY: Parameter(int, 4),
            WIDTH_KEY: Parameter(int, 160),
            HEIGHT_KEY: Parameter(int, 60),
            RENDER_STYLE_KEY: Parameter(
                str, "library", "a preset of captcha_source.STYLES or a JSON object of RenderStyle fields"
            ),
            SPLITS_KEY: _SPLITS,
        },
    )
    EXECUTOR = ExecutorRef("components.example_gen.executor:CaptchaExampleGenExecutor")


class CsvExampleGen(BaseComponent):
    SPEC = ComponentSpec(
        outputs={EXAMPLES_KEY: Examples},
        parameters={
            INPUT_PATH_KEY: Parameter(str, data_path=True),
            SCHEMA_PATH_KEY: Parameter(str, None, "gives column names and types when set", data_path=True),
            SPLIT_KEY_KEY: Parameter(str, None, "column hashed to choose the split; default the whole row"),
            SPLITS_KEY: _SPLITS,
        },
    )
    EXECUTOR = ExecutorRef("components.example_gen.executor:CsvExampleGenExecutor")


class ImageExampleGen(BaseComponent):
    SPEC = ComponentSpec(
        outputs={EXAMPLES_KEY: Examples},
        parameters={INPUT_PATH_KEY: Parameter(str, data_path=True), SPLITS_KEY: _SPLITS},
    )
    EXECUTOR = ExecutorRef("components.example_gen.executor:ImageExampleGenExecutor")


class IdxExampleGen(BaseComponent):
    SPEC = ComponentSpec(
        outputs={EXAMPLES_KEY: Examples},
        parameters={
            INPUT_PATH_KEY: Parameter(
                str,
                doc="a folder with t10k-{images,labels} IDX files (gzip or not), optionally train-*",
                data_path=True,
            ),
            SPLITS_KEY: _SPLITS,
            TEST_SPLIT_KEY: Parameter(str, "test", "with train-* files present: the split that t10k fills alone"),
        },
    )
    EXECUTOR = ExecutorRef("components.example_gen.executor:IdxExampleGenExecutor")
