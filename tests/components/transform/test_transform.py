"""Transform with tf.Transform: full-pass z-scores match numpy; captcha images and labels."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_transform as tft

from components.example_gen import CaptchaExampleGen, CsvExampleGen
from components.schema_gen import SchemaGen
from components.statistics_gen import StatisticsGen
from components.transform import Transform
from pipelines.captcha import SCHEMA_PATH as CAPTCHA_SCHEMA
from pipelines.captcha.preprocessing import text_to_ids
from pipelines.house_price import SCHEMA_PATH as HOUSE_SCHEMA
from pipelines.stages import data_stages
from tests.components.helpers import feature_values, read_examples, run_components


def house_price_components(csv_path):
    """The house-price pipeline's data half (pipelines/stages.py), not stopped by anomalies."""
    gen = CsvExampleGen(input_path=csv_path, schema_path=HOUSE_SCHEMA)
    return [gen, *data_stages(gen, HOUSE_SCHEMA, False, "pipelines.house_price.preprocessing:make_preprocessing_fn")]


def test_z_scores_equal_numpy_on_the_books_data(tmp_path, shared_data):
    path = os.path.join(shared_data, "house_price", "data1.csv")
    result = run_components(tmp_path, house_price_components(path))
    [raw] = result.outputs("CsvExampleGen", "examples")
    [transformed] = result.outputs("Transform", "transformed_examples")
    train = read_examples(raw, "train")
    area = np.array([feature_values(e, "area")[0] for e in train], dtype=np.float64)
    bedrooms = np.array([feature_values(e, "bedrooms")[0] for e in train], dtype=np.float64)
    # Full-pass analyzers see the train split; tft's z-score uses the population std.
    expected = sorted(
        (
            feature_values(e, "price")[0],
            (feature_values(e, "area")[0] - area.mean()) / area.std(),
            (feature_values(e, "bedrooms")[0] - bedrooms.mean()) / bedrooms.std(),
        )
        for e in train
    )
    out = read_examples(transformed, "train")
    got = sorted(
        (feature_values(e, "price")[0], feature_values(e, "area")[0], feature_values(e, "bedrooms")[0]) for e in out
    )
    assert len(got) == len(expected) == len(train)
    np.testing.assert_allclose(np.array(got), np.array(expected), rtol=1e-4, atol=1e-5)
    # Eval and test splits are transformed with the train split's mean and std.
    graph_dir = result.outputs("Transform", "transform_graph")[0].uri
    output = tft.TFTransformOutput(graph_dir)
    raw_eval = read_examples(raw, "eval")
    transformed_eval = read_examples(transformed, "eval")
    assert len(raw_eval) == len(transformed_eval)
    if raw_eval:
        features = output.transform_raw_features(
            {
                "area": tf.constant([[feature_values(raw_eval[0], "area")[0]]]),
                "bedrooms": tf.constant([[feature_values(raw_eval[0], "bedrooms")[0]]], tf.int64),
                "price": tf.constant([[0.0]]),
            }
        )
        expected = (feature_values(raw_eval[0], "area")[0] - area.mean()) / area.std()
        assert float(features["area"].numpy().ravel()[0]) == pytest.approx(expected, rel=1e-4)


def test_captcha_transform_decodes_images_and_maps_labels_to_ids(tmp_path):
    gen = CaptchaExampleGen(num_examples=30, seed=5, splits="train:1,test:1")
    stats = StatisticsGen(examples=gen.outputs["examples"])
    schema = SchemaGen(statistics=stats.outputs["statistics"], schema_path=CAPTCHA_SCHEMA)
    params = {"charset": "0123456789", "length": 4, "image_height": 30, "image_width": 80}
    transform = Transform(
        examples=gen.outputs["examples"],
        schema=schema.outputs["schema"],
        preprocessing_fn="pipelines.captcha.preprocessing:make_preprocessing_fn",
        preprocessing_params=json.dumps(params),
    )
    result = run_components(tmp_path, [gen, stats, schema, transform])
    [raw] = result.outputs("CaptchaExampleGen", "examples")
    [transformed] = result.outputs("Transform", "transformed_examples")
    raw_train = read_examples(raw, "train")
    out = read_examples(transformed, "train")
    assert len(out) == len(raw_train) > 0
    labels = sorted(feature_values(e, "label")[0].decode() for e in raw_train)
    ids = sorted("".join(str(i) for i in feature_values(e, "label")) for e in out)
    assert ids == labels  # digits charset: id i is the digit i
    pixels = np.array(feature_values(out[0], "image"))
    assert pixels.shape == (30 * 80,)
    assert 0.0 <= pixels.min() and pixels.max() <= 1.0 and pixels.std() > 0.01


def test_text_to_ids_marks_unknown_characters_and_wrong_lengths():
    ids = text_to_ids(tf.constant(["1a3", "12345", "0"]), "0123456789", 4).numpy().tolist()
    assert ids == [[1, -1, 3, -1], [-1, -1, -1, -1], [0, -1, -1, -1]]
