"""Image features' width, height and mean intensity in the TFDV statistics (issue #17)."""

from __future__ import annotations

import io

import tensorflow as tf
import tensorflow_data_validation as tfdv
from PIL import Image

from components.statistics_gen.image_stats import (
    ENCODED,
    HEIGHT,
    INTENSITY,
    WIDTH,
    ImageStatsGenerator,
    image_histograms,
    measure,
    undecodable,
)


def png(width: int, height: int, grey: int, mode: str = "L") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, (width, height), grey if mode == "L" else (grey, grey, grey)).save(buffer, "PNG")
    return buffer.getvalue()


def test_measure_reads_size_and_grey_level_of_any_mode():
    assert measure(png(30, 20, 200)) == (30, 20, 200.0)
    width, height, mean = measure(png(7, 9, 64, mode="RGB"))
    assert (width, height) == (7, 9) and abs(mean - 64) < 1
    assert measure(b"not an image") is None
    assert measure(png(30, 20, 0)[:40]) is None  # the header survives, the pixels do not


def test_an_image_too_big_to_decode_counts_by_size_only(monkeypatch):
    import components.statistics_gen.image_stats as image_stats

    monkeypatch.setattr(image_stats, "MAX_MEASURED_PIXELS", 100)
    assert measure(png(20, 20, 10)) == (20, 20, None)


def _statistics(tmp_path, images: list[bytes], features: list[str]):
    path = str(tmp_path / "examples.tfrecord")
    with tf.io.TFRecordWriter(path) as writer:
        for data in images:
            example = tf.train.Example()
            example.features.feature["image"].bytes_list.value.append(data)
            example.features.feature["label"].bytes_list.value.append(b"7")
            writer.write(example.SerializeToString())
    options = tfdv.StatsOptions(generators=[ImageStatsGenerator(features)])
    # An output path of its own: without one TFDV writes to a tempfile.mkdtemp() that it never removes.
    stats = tfdv.generate_statistics_from_tfrecord(path, str(tmp_path / "stats.tfrecord"), stats_options=options)
    return {".".join(f.path.step): f for f in stats.datasets[0].features}


def test_the_named_features_get_width_height_and_intensity_histograms(tmp_path):
    images = [png(28, 28, 0)] * 3 + [png(40, 10, 255)] * 2 + [b"\x89PNG broken"]
    features = _statistics(tmp_path, images, ["image"])
    hists = image_histograms(features["image"])
    widths = {(b.low_value, b.sample_count) for b in hists[WIDTH].buckets}
    heights = {(b.low_value, b.sample_count) for b in hists[HEIGHT].buckets}
    assert widths == {(28, 3), (40, 2)} and heights == {(28, 3), (10, 2)}
    intensity = hists[INTENSITY].buckets
    assert intensity[0].sample_count == 3 and intensity[-1].sample_count == 2
    assert sum(b.sample_count for b in intensity) == 5
    assert undecodable(features["image"]) == 1
    encoded = hists[ENCODED].buckets
    assert sum(b.sample_count for b in encoded) == 6  # the broken value has a size too
    assert image_histograms(features["label"]) == {}  # not named: TFDV's statistics only


def test_many_distinct_sizes_share_equal_buckets(tmp_path):
    images = [png(10 + i, 5, 128) for i in range(50)]
    hists = image_histograms(_statistics(tmp_path, images, ["image"])["image"])
    buckets = hists[WIDTH].buckets
    assert len(buckets) == 20 and sum(b.sample_count for b in buckets) == 50
    assert buckets[0].low_value == 10 and buckets[-1].high_value == 59


def test_the_statistics_page_draws_each_splits_images_and_sums_them_up(tmp_path):
    from tensorflow_metadata.proto.v0 import statistics_pb2

    from components.statistics_gen.stats_html import statistics_html

    def stats_list(images, name):
        features = _statistics(tmp_path / name, images, ["image"])
        stats = statistics_pb2.DatasetFeatureStatisticsList()
        stats.datasets.add(num_examples=len(images)).features.extend(features.values())
        return stats

    (tmp_path / "train").mkdir()
    (tmp_path / "eval").mkdir()
    by_split = {
        "train": stats_list([png(28, 28, 10)] * 4, "train"),
        "eval": stats_list([png(28, 28, 10), png(56, 20, 250), b"junk"], "eval"),
    }
    page = statistics_html(by_split, "images")
    assert page.count('alt="image: image width, height, intensity and size per split"') == 1
    assert "width 28..28, height 28..28 pixels; mean intensity about 8" in page  # train: 16-level bucket mid
    assert "width 28..56, height 20..28 pixels" in page and "1 not decodable as images" in page
