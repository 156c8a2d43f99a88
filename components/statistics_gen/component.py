"""StatisticsGen: Examples in, TFDV statistics per split out (plus an HTML view).

Statistics are computed inside the Beam pipeline with `tfdv.GenerateStatistics`; the features
named in `image_features` also get width, height and mean-intensity histograms (image_stats.py).
"""

from components.base import BaseComponent, ComponentSpec, Examples, ExampleStatistics, Parameter
from components.base.component import ExecutorRef, InputSpec

# The keys of its inputs, outputs and parameters: the executor and the pipelines use these names.
NUM_TOP_VALUES_KEY = "num_top_values"
IMAGE_FEATURES_KEY = "image_features"
EXAMPLES_KEY = "examples"
STATISTICS_KEY = "statistics"


class StatisticsGen(BaseComponent):
    SPEC = ComponentSpec(
        inputs={EXAMPLES_KEY: InputSpec(Examples)},
        outputs={STATISTICS_KEY: ExampleStatistics},
        parameters={
            NUM_TOP_VALUES_KEY: Parameter(int, 20),
            IMAGE_FEATURES_KEY: Parameter(
                str, "", "comma-separated bytes features holding encoded images: width, height, intensity"
            ),
        },
    )
    EXECUTOR = ExecutorRef("components.statistics_gen.executor:StatisticsGenExecutor")
