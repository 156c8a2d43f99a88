from __future__ import annotations

import os

import apache_beam as beam
import tensorflow as tf
import tensorflow_data_validation as tfdv
from tensorflow_metadata.proto.v0 import statistics_pb2
from tfx_bsl.public import tfxio

from components.base import BaseBeamExecutor, fileio
from components.statistics_gen.component import EXAMPLES_KEY, IMAGE_FEATURES_KEY, NUM_TOP_VALUES_KEY, STATISTICS_KEY
from components.statistics_gen.image_stats import ImageStatsGenerator
from components.statistics_gen.stats_html import statistics_html
from components.statistics_gen.stats_io import HTML_FILE, STATS_FILE, load_split_statistics


def write_empty_statistics(path: str) -> None:
    """An empty split still gets statistics (zero examples), so validators can say so."""
    stats = statistics_pb2.DatasetFeatureStatisticsList()
    stats.datasets.add(num_examples=0)
    with fileio.open(path, "wb") as f:
        f.write(stats.SerializeToString())


class ComputeStatistics(beam.PTransform):
    """Serialized tf.Examples from files -> TFDV statistics written to `output_path`."""

    def __init__(self, file_pattern: str, output_path: str, options: tfdv.StatsOptions) -> None:
        super().__init__()
        self.file_pattern = file_pattern
        self.output_path = output_path
        self.options = options

    def expand(self, pipeline):
        source = tfxio.TFExampleRecord(file_pattern=self.file_pattern, telemetry_descriptors=["StatisticsGen"])
        return (
            pipeline
            | "ReadExamples" >> source.BeamSource()
            | "GenerateStatistics" >> tfdv.GenerateStatistics(self.options)
            | "WriteStatistics" >> tfdv.WriteStatisticsToBinaryFile(self.output_path)
        )


class StatisticsGenExecutor(BaseBeamExecutor):
    """TFDV statistics of every split, computed inside one Beam pipeline, and an HTML view of them.

    Input: `examples`. Output: `statistics` (FeatureStats.pb per split, statistics.html).
    Parameters: `num_top_values` (per categorical feature), `image_features` (comma-separated bytes
    features holding encoded images; they also get width, height and mean-intensity histograms)."""

    def Do(self, input_dict, output_dict, exec_properties):
        [examples] = input_dict[EXAMPLES_KEY]
        [statistics] = output_dict[STATISTICS_KEY]
        images = [f.strip() for f in exec_properties[IMAGE_FEATURES_KEY].split(",") if f.strip()]
        options = tfdv.StatsOptions(
            num_top_values=exec_properties[NUM_TOP_VALUES_KEY],
            generators=[ImageStatsGenerator(images)] if images else None,
        )
        splits = examples.split_names
        pipeline = self._make_beam_pipeline()
        submitted = False
        for split in splits:
            out_dir = statistics.split_uri(split)
            fileio.makedirs(out_dir)
            pattern = examples.split_files(split)
            if not tf.io.gfile.glob(pattern):
                write_empty_statistics(os.path.join(out_dir, STATS_FILE))
                continue
            _ = pipeline | f"Statistics[{split}]" >> ComputeStatistics(
                pattern, os.path.join(out_dir, STATS_FILE), options
            )
            submitted = True
        if submitted:
            self._run_beam_pipeline(pipeline, written=[statistics])
        statistics.split_names = splits
        by_split = {split: load_split_statistics(statistics, split) for split in splits}
        with fileio.open(os.path.join(statistics.uri, HTML_FILE), "w") as f:
            f.write(statistics_html(by_split, f"{self.context.pipeline_name}: example statistics"))
