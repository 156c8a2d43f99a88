"""Where statistics live inside an ExampleStatistics artifact, and reading them back."""

from __future__ import annotations

import os

import tensorflow_data_validation as tfdv
from tensorflow_metadata.proto.v0 import statistics_pb2

from components.base import fileio

STATS_FILE = "FeatureStats.pb"
HTML_FILE = "statistics.html"


def split_stats_path(statistics_artifact, split: str) -> str:
    return os.path.join(statistics_artifact.split_uri(split), STATS_FILE)


def load_split_statistics(statistics_artifact, split: str) -> statistics_pb2.DatasetFeatureStatisticsList:
    path = split_stats_path(statistics_artifact, split)
    if not fileio.exists(path):
        raise FileNotFoundError(
            f"no statistics for split {split!r} in {statistics_artifact.uri} "
            f"(splits: {', '.join(statistics_artifact.split_names) or 'none'})"
        )
    return tfdv.load_stats_binary(path)
