"""InfraValidator on its own: a tiny real SavedModel loaded in a separate process and sent requests
built from raw examples; blessed only when every request is answered, with TF Serving warmup
records left for the Pusher."""

from __future__ import annotations

import json
import os

import pytest
import tensorflow as tf

from components.base import Examples, InfraBlessing, Model
from components.infra_validator.executor import InfraValidatorExecutor
from components.infra_validator.requests import WARMUP_FILE, raw_requests, read_warmup_requests
from components.trainer.fn_args import SERVING_DIR


def write_examples(root, split: str, texts: list[bytes]) -> Examples:
    examples = Examples(uri=str(root))
    os.makedirs(examples.split_uri(split))
    path = os.path.join(examples.split_uri(split), "data.tfrecord.gz")
    with tf.io.TFRecordWriter(path, options="GZIP") as writer:
        for text in texts:
            example = tf.train.Example()
            example.features.feature["text"].bytes_list.value.append(text)
            writer.write(example.SerializeToString())
    examples.split_names = [split]
    return examples


def write_model(root, dtype=tf.string) -> Model:
    """serving_default: text -> its length in bytes (or, with another dtype, a model the requests do not fit)."""

    class Length(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], dtype)])
        def serve(self, text):
            if dtype == tf.string:
                return {"length": tf.strings.length(text)}
            return {"length": tf.cast(text, tf.int32)}

    model = Model(uri=str(root), properties={"model_name": "length"})
    module = Length()
    tf.saved_model.save(module, os.path.join(model.uri, SERVING_DIR), signatures={"serving_default": module.serve})
    return model


def run(tmp_path, model: Model, examples: Examples, **overrides) -> InfraBlessing:
    blessing = InfraBlessing(uri=str(tmp_path / "blessing"))
    os.makedirs(blessing.uri)
    properties = {"input_mapping": json.dumps({"text": "text"}), "num_requests": 3, "split": "test"}
    properties.update(timeout_seconds=120, **overrides)
    InfraValidatorExecutor().Do({"examples": [examples], "model": [model]}, {"blessing": [blessing]}, properties)
    return blessing


def test_a_model_that_loads_and_answers_is_blessed_with_warmup_records(tmp_path):
    examples = write_examples(tmp_path / "examples", "test", [b"a", b"bb", b"ccc", b"dddd"])
    blessing = run(tmp_path, write_model(tmp_path / "model"), examples)
    report = json.load(open(os.path.join(blessing.uri, "report.json")))
    assert blessing.get("blessed") == 1 and report["answered"] == 3, report
    assert report["outputs"] == [{"length": [1]}] * 3
    assert "answered 3 requests" in blessing.get("reason")
    logs = read_warmup_requests(os.path.join(blessing.uri, WARMUP_FILE))
    sent = [tf.make_ndarray(log.predict_log.request.inputs["text"]).tolist() for log in logs]
    assert sent == [[b"a"], [b"bb"], [b"ccc"]]
    assert {log.predict_log.request.model_spec.name for log in logs} == {"length"}


def test_a_model_whose_signature_refuses_the_requests_is_not_blessed(tmp_path):
    examples = write_examples(tmp_path / "examples", "test", [b"a", b"bb"])
    blessing = run(tmp_path, write_model(tmp_path / "model", dtype=tf.float32), examples)
    assert blessing.get("blessed") == 0
    assert blessing.get("reason").startswith("failed to load or answer:")


def test_a_model_that_is_not_there_is_not_blessed(tmp_path):
    examples = write_examples(tmp_path / "examples", "test", [b"a"])
    os.makedirs(tmp_path / "empty" / SERVING_DIR)
    blessing = run(tmp_path, Model(uri=str(tmp_path / "empty")), examples)
    assert blessing.get("blessed") == 0 and "failed to load" in blessing.get("reason")


def test_requests_name_what_is_missing(tmp_path):
    examples = write_examples(tmp_path / "examples", "test", [b"a"])
    with pytest.raises(ValueError, match="raw feature 'image' is missing from the test examples"):
        raw_requests(examples, "test", {"image_bytes": "image"}, 2)
    os.makedirs(examples.split_uri("eval"))
    with pytest.raises(ValueError, match="no eval examples"):
        raw_requests(examples, "eval", {"text": "text"}, 2)
