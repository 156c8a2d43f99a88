"""Requests built from raw examples, and TF Serving warmup records made from them."""

from __future__ import annotations

import os

import numpy as np
import tensorflow as tf

from components.base import fileio
from serving.layout import DEFAULT_SIGNATURE, WARMUP_FILE  # noqa: F401 - WARMUP_FILE: the executor's import


def raw_requests(
    examples_artifact, split: str, input_mapping: dict[str, str], count: int
) -> list[dict[str, np.ndarray]]:
    """One request per example: {signature input: a batch of one value}."""
    files = sorted(fileio.glob(examples_artifact.split_files(split)))
    requests = []
    for record in tf.data.TFRecordDataset(files, compression_type="GZIP").take(count):
        example = tf.train.Example.FromString(record.numpy())
        request = {}
        for input_name, feature_name in input_mapping.items():
            feature = example.features.feature[feature_name]
            kind = feature.WhichOneof("kind")
            if kind is None:
                raise ValueError(f"raw feature {feature_name!r} is missing from the {split} examples")
            values = list(getattr(feature, kind).value)
            dtype = {"bytes_list": object, "float_list": np.float32, "int64_list": np.int64}[kind]
            request[input_name] = np.array(values[:1], dtype=dtype)
        requests.append(request)
    if not requests:
        raise ValueError(f"no {split} examples to build requests from")
    return requests


def write_warmup_records(requests: list[dict[str, np.ndarray]], model_name: str, path: str) -> None:
    """TF Serving's warmup format: a TFRecord of PredictionLog{predict_log{request}}."""
    from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2

    fileio.makedirs(os.path.dirname(path))
    with tf.io.TFRecordWriter(path) as writer:
        for inputs in requests:
            request = predict_pb2.PredictRequest(
                model_spec=model_pb2.ModelSpec(name=model_name, signature_name=DEFAULT_SIGNATURE)
            )
            for name, value in inputs.items():
                request.inputs[name].CopyFrom(tf.make_tensor_proto(value))
            log = prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=request))
            writer.write(log.SerializeToString())


def read_warmup_requests(path: str):
    from tensorflow_serving.apis import prediction_log_pb2

    logs = []
    for record in tf.data.TFRecordDataset([path]):
        logs.append(prediction_log_pb2.PredictionLog.FromString(record.numpy()))
    return logs
