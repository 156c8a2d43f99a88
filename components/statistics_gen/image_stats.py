"""What TFDV does not say about image features: each split's width, height and mean intensity.

TFDV sees an encoded image as a bytes value (its statistics say only how long the bytes are). This
generator runs inside `tfdv.GenerateStatistics` beside TFDV's own and adds, for the features a
pipeline names as images, three histograms to that feature's statistics as custom statistics:
`image_width`, `image_height` (pixels), `image_mean_intensity` (0 black .. 255 white, in grey) and
`image_encoded_bytes` (the size on the wire), plus `image_undecodable` (values no image decoder could read). They travel in the same
FeatureStats.pb as the rest, so the statistics page draws them per split like any other feature.
"""

from __future__ import annotations

import collections
import dataclasses
import io

import pyarrow as pa
from tensorflow_data_validation.statistics.generators import stats_generator
from tensorflow_data_validation.utils import stats_util
from tensorflow_metadata.proto.v0 import statistics_pb2

WIDTH, HEIGHT, INTENSITY, ENCODED, UNDECODABLE = (
    "image_width",
    "image_height",
    "image_mean_intensity",
    "image_encoded_bytes",
    "image_undecodable",
)
INTENSITY_BUCKETS = 16  # of 16 grey levels each
SIZE_BUCKETS = 20  # sizes take one bucket each while there are at most this many distinct ones
HISTOGRAMS = (WIDTH, HEIGHT, INTENSITY, ENCODED)
MAX_MEASURED_PIXELS = 4096 * 4096  # bigger images count by their size only, never decoded


@dataclasses.dataclass
class _Partial:
    widths: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    heights: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    lengths: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    intensity: list[int] = dataclasses.field(default_factory=lambda: [0] * INTENSITY_BUCKETS)
    undecodable: int = 0

    def merge(self, other: _Partial) -> _Partial:
        self.widths.update(other.widths)
        self.heights.update(other.heights)
        self.lengths.update(other.lengths)
        self.intensity = [a + b for a, b in zip(self.intensity, other.intensity)]
        self.undecodable += other.undecodable
        return self


def measure(data: bytes) -> tuple[int, int, float | None] | None:
    """(width, height, mean grey level or None when too big to decode) of one encoded image; None
    when it is not an image Pillow can read."""
    from PIL import Image, ImageStat

    try:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
            if width * height > MAX_MEASURED_PIXELS:
                return width, height, None
            return width, height, ImageStat.Stat(image.convert("L")).mean[0]
    except Exception:  # noqa: BLE001 - Pillow raises many kinds for bytes that are not an image
        return None


def _size_histogram(counts: collections.Counter) -> statistics_pb2.Histogram:
    hist = statistics_pb2.Histogram(type=statistics_pb2.Histogram.STANDARD)
    if not counts:
        return hist
    values = sorted(counts)
    if len(values) <= SIZE_BUCKETS:
        for v in values:
            hist.buckets.add(low_value=v, high_value=v, sample_count=counts[v])
        return hist
    low, high = values[0], values[-1]
    step = (high - low) / SIZE_BUCKETS
    sums = [0] * SIZE_BUCKETS
    for v, n in counts.items():
        sums[min(SIZE_BUCKETS - 1, int((v - low) / step))] += n
    for i, n in enumerate(sums):
        hist.buckets.add(low_value=low + i * step, high_value=low + (i + 1) * step, sample_count=n)
    return hist


class ImageStatsGenerator(stats_generator.CombinerFeatureStatsGenerator):
    """Width, height and mean intensity histograms of the named bytes features (encoded images)."""

    def __init__(self, features: list[str] | tuple[str, ...]) -> None:
        super().__init__("ImageContentStats")
        self._features = frozenset(features)

    def create_accumulator(self) -> _Partial:
        return _Partial()

    def add_input(self, accumulator: _Partial, feature_path, feature_array: pa.Array) -> _Partial:
        if ".".join(feature_path.steps()) not in self._features:
            return accumulator
        feature_type = stats_util.get_feature_type_from_arrow_type(feature_path, feature_array.type)
        if feature_type != statistics_pb2.FeatureNameStatistics.STRING:
            return accumulator
        nested = pa.types.is_list(feature_array.type) or pa.types.is_large_list(feature_array.type)
        values = feature_array.flatten() if nested else feature_array
        for value in values.to_pylist():
            if value is None:
                continue
            accumulator.lengths[len(value)] += 1
            found = measure(value)
            if found is None:
                accumulator.undecodable += 1
                continue
            width, height, mean = found
            accumulator.widths[width] += 1
            accumulator.heights[height] += 1
            if mean is not None:
                accumulator.intensity[min(INTENSITY_BUCKETS - 1, int(mean * INTENSITY_BUCKETS / 256))] += 1
        return accumulator

    def merge_accumulators(self, accumulators) -> _Partial:
        merged = _Partial()
        for accumulator in accumulators:
            merged.merge(accumulator)
        return merged

    def extract_output(self, accumulator: _Partial) -> statistics_pb2.FeatureNameStatistics:
        result = statistics_pb2.FeatureNameStatistics()
        if not accumulator.lengths:
            return result  # not one of ours, or no values
        result.custom_stats.add(name=WIDTH, histogram=_size_histogram(accumulator.widths))
        result.custom_stats.add(name=HEIGHT, histogram=_size_histogram(accumulator.heights))
        step = 256 / INTENSITY_BUCKETS
        intensity = statistics_pb2.Histogram(type=statistics_pb2.Histogram.STANDARD)
        for i, n in enumerate(accumulator.intensity):
            intensity.buckets.add(low_value=i * step, high_value=(i + 1) * step, sample_count=n)
        result.custom_stats.add(name=INTENSITY, histogram=intensity)
        result.custom_stats.add(name=ENCODED, histogram=_size_histogram(accumulator.lengths))
        result.custom_stats.add(name=UNDECODABLE, num=accumulator.undecodable)
        return result


def image_histograms(feature: statistics_pb2.FeatureNameStatistics) -> dict[str, statistics_pb2.Histogram]:
    """{image_width|image_height|image_mean_intensity|image_encoded_bytes: histogram} of one
    feature's statistics (empty for a feature that is not an image)."""
    return {c.name: c.histogram for c in feature.custom_stats if c.name in HISTOGRAMS}


def undecodable(feature: statistics_pb2.FeatureNameStatistics) -> int:
    return next((int(c.num) for c in feature.custom_stats if c.name == UNDECODABLE), 0)
