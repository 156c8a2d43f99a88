"""ExampleGen: raw data in, gzip TFRecords of tf.train.Example out, split by key hash.

Three sources, one output contract (`examples`: Examples with one
`Split-<name>/` folder per split):
- CaptchaExampleGen renders `num_examples` captchas in a `render_style` (features `image`: PNG or JPEG, `label`: text);
- CsvExampleGen reads a CSV (header row, or column names from `schema_path`);
- ImageExampleGen reads an image folder (`<label>.<ext>` files or one subfolder per label);
- IdxExampleGen reads MNIST's IDX files (features `image`: PNG, `label`: the digit as text).
"""

from components.base import BaseComponent, ComponentSpec, Examples, Parameter
from components.example_gen import executor
from components.example_gen.splits import DEFAULT_SPLITS

_SPLITS = Parameter(str, DEFAULT_SPLITS, "name:weight pairs, e.g. train:8,eval:1,test:1")


class CaptchaExampleGen(BaseComponent):
    SPEC = ComponentSpec(
        outputs={"examples": Examples},
        parameters={
            "num_examples": Parameter(int, 10_000),
            "seed": Parameter(int, 0),
            "charset": Parameter(str, "0123456789"),
            "length": Parameter(int, 4),
            "width": Parameter(int, 160),
            "height": Parameter(int, 60),
            "render_style": Parameter(
                str, "library", "a preset of captcha_source.STYLES or a JSON object of RenderStyle fields"
            ),
            "splits": _SPLITS,
        },
    )
    EXECUTOR = executor.CaptchaExampleGenExecutor


class CsvExampleGen(BaseComponent):
    SPEC = ComponentSpec(
        outputs={"examples": Examples},
        parameters={
            "input_path": Parameter(str),
            "schema_path": Parameter(str, None, "gives column names and types when set"),
            "split_key": Parameter(str, None, "column hashed to choose the split; default the whole row"),
            "splits": _SPLITS,
        },
    )
    EXECUTOR = executor.CsvExampleGenExecutor


class ImageExampleGen(BaseComponent):
    SPEC = ComponentSpec(
        outputs={"examples": Examples},
        parameters={"input_path": Parameter(str), "splits": _SPLITS},
    )
    EXECUTOR = executor.ImageExampleGenExecutor


class IdxExampleGen(BaseComponent):
    SPEC = ComponentSpec(
        outputs={"examples": Examples},
        parameters={
            "input_path": Parameter(
                str, doc="a folder with t10k-{images,labels} IDX files (gzip or not), optionally train-*"
            ),
            "splits": _SPLITS,
            "test_split": Parameter(str, "test", "with train-* files present: the split that t10k fills alone"),
            # Not read by the executor: the files' sizes and times, so changed data is a cache miss.
            "data_version": Parameter(str, ""),
        },
    )
    EXECUTOR = executor.IdxExampleGenExecutor
