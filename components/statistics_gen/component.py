"""StatisticsGen: Examples in, TFDV statistics per split out (plus an HTML view).

Statistics are computed inside the Beam pipeline with `tfdv.GenerateStatistics`; the features
named in `image_features` also get width, height and mean-intensity histograms (image_stats.py).
"""

from components.base import BaseComponent, ComponentSpec, Examples, ExampleStatistics, Parameter
from components.base.component import InputSpec
from components.statistics_gen import executor


class StatisticsGen(BaseComponent):
    SPEC = ComponentSpec(
        inputs={"examples": InputSpec(Examples)},
        outputs={"statistics": ExampleStatistics},
        parameters={
            "num_top_values": Parameter(int, 20),
            "image_features": Parameter(
                str, "", "comma-separated bytes features holding encoded images: width, height, intensity"
            ),
        },
    )
    EXECUTOR = executor.StatisticsGenExecutor
