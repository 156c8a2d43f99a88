"""A tiny SavedModel with every kind of signature the server handles; its `offset` tells versions apart."""

from __future__ import annotations

import os

import tensorflow as tf
from tensorflow_serving.apis import predict_pb2, prediction_log_pb2

from components.trainer.signatures import CLASSIFY_METHOD, REGRESS_METHOD, set_method_names
from serving.model_server.process import ServerProcess


class Toy(tf.Module):
    def __init__(self, offset: float) -> None:
        super().__init__()
        self.offset = tf.Variable(float(offset))

    @tf.function(input_signature=[tf.TensorSpec([None], tf.float32, name="x")])
    def half_plus(self, x):
        return {"y": 0.5 * x + self.offset}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.float32, name="x")])
    def slow(self, x):
        """half_plus after ~1 GFLOP of busy work: long enough for concurrent requests to queue behind it."""
        m = tf.ones([256, 256]) / 256.0
        _, busy = tf.while_loop(lambda i, a: i < 40, lambda i, a: (i + 1, tf.matmul(a, m)), (0, m))
        return {"y": 0.5 * x + self.offset + 0.0 * tf.reduce_sum(busy)}

    @tf.function(
        input_signature=[tf.TensorSpec([None], tf.float32, name="x"), tf.TensorSpec([None], tf.string, name="tag")]
    )
    def multi(self, x, tag):
        return {"y": 0.5 * x + self.offset, "tag_bytes": tag, "upper": tf.strings.upper(tag)}

    @tf.function(input_signature=[tf.TensorSpec([None, 2], tf.int64, name="pair")])
    def sum_pair(self, pair):
        return {"total": tf.reduce_sum(pair, axis=1)}

    def _parse(self, examples):
        return tf.io.parse_example(examples, {"x": tf.io.FixedLenFeature([], tf.float32)})["x"]

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="inputs")])
    def classify(self, inputs):
        x = self._parse(inputs)
        n = tf.shape(x)[0]
        classes = tf.tile(tf.constant([["low", "high"]]), [n, 1])
        high = tf.sigmoid(x - self.offset)
        return {"classes": classes, "scores": tf.stack([1.0 - high, high], axis=1)}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="inputs")])
    def regress(self, inputs):
        return {"outputs": 0.5 * self._parse(inputs) + self.offset}


def write_toy_model(base_path: str, version: int, offset: float | None = None, warmup: bool = True) -> str:
    """<base_path>/<version>/ written beside and renamed into place, as the Pusher does."""
    offset = float(version) if offset is None else offset
    module = Toy(offset)
    final = os.path.join(base_path, str(version))
    staging = os.path.join(base_path, f".{version}.staging")
    tf.saved_model.save(
        module,
        staging,
        signatures={
            "serving_default": module.half_plus,
            "slow": module.slow,
            "multi": module.multi,
            "sum_pair": module.sum_pair,
            "classify": module.classify,
            "regress": module.regress,
        },
    )
    set_method_names(staging, {"classify": CLASSIFY_METHOD, "regress": REGRESS_METHOD})
    if warmup:
        os.makedirs(os.path.join(staging, "assets.extra"), exist_ok=True)
        request = predict_pb2.PredictRequest()
        request.model_spec.name = "toy"
        request.inputs["x"].CopyFrom(tf.make_tensor_proto([1.0, 2.0], dtype=tf.float32))
        with tf.io.TFRecordWriter(os.path.join(staging, "assets.extra", "tf_serving_warmup_requests")) as w:
            w.write(
                prediction_log_pb2.PredictionLog(
                    predict_log=prediction_log_pb2.PredictLog(request=request)
                ).SerializeToString()
            )
    os.rename(staging, final)
    return final


class HousePrice(tf.Module):
    """The house-price serving contract (raw area and bedrooms in, price out) with a known formula."""

    @tf.function(
        input_signature=[
            tf.TensorSpec([None], tf.float32, name="area"),
            tf.TensorSpec([None], tf.int64, name="bedrooms"),
        ]
    )
    def serve(self, area, bedrooms):
        return {"price": 100.0 * area + 5000.0 * tf.cast(bedrooms, tf.float32)}


def write_house_price_model(base_path: str, version: int = 1) -> str:
    module = HousePrice()
    path = os.path.join(base_path, str(version))
    tf.saved_model.save(module, path, signatures={"serving_default": module.serve})
    return path


def without_lag_shedding(flags: tuple[str, ...]) -> tuple[str, ...]:
    """`flags` with the event loop's lag shedding off, unless they set it themselves.

    The server refuses new requests beside work in progress while its event loop runs more than
    --max_loop_lag_ms (100 ms) behind. On a machine that the other test workers keep busy, a test
    server's loop lags that far, and concurrent requests that the test expects answered come back
    "overloaded". That shedding is the server's defence against overload, not what these tests test
    (tests/serving/model_server/test_admission.py does, and the overload benchmarks)."""
    return flags if "--max_loop_lag_ms" in flags else (*flags, "--max_loop_lag_ms", "0")


def model_server(*flags: str, log_path: str, poll: float | None = None, **kwargs) -> ServerProcess:
    """A model server with these flags (started, not yet waited for), no lag shedding
    (without_lag_shedding); `poll`: its --file_system_poll_wait_seconds."""
    if poll is not None:
        flags = (*flags, "--file_system_poll_wait_seconds", str(poll))
    return ServerProcess(*without_lag_shedding(flags), log_path=log_path, **kwargs)


def toy_server(base_path: str, *flags: str, log_path: str, poll: float | None = None, **kwargs) -> ServerProcess:
    """model_server() serving the toy model at `base_path` as "toy"."""
    return model_server(
        "--model_name", "toy", "--model_base_path", base_path, *flags, log_path=log_path, poll=poll, **kwargs
    )
