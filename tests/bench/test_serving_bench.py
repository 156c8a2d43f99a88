"""The serving bench's own parts: the gRPC floor server answers real Predict calls, and the
bound it derives is the arithmetic its docstring states."""

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from bench.serving_bench import cpu_seconds, floor_server, grpc_bounds
from serving.model_server.process import free_port


def test_floor_server_answers_predict_like_the_captcha_model():
    port = free_port()
    with floor_server(port) as floor:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            request = predict_pb2.PredictRequest()
            request.model_spec.name = "captcha"
            request.inputs["image_bytes"].CopyFrom(tf.make_tensor_proto([b"any bytes"]))
            response = prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(request, timeout=10)
        assert tf.make_ndarray(response.outputs["text"]).tolist() == [b"4821"]
        assert tf.make_ndarray(response.outputs["probabilities"]).shape == (1, 4, 10)
        assert cpu_seconds(floor.pid) > 0
    assert floor.returncode == 0  # stopped cleanly on SIGTERM


def test_bound_is_cores_over_cpu_per_request(monkeypatch):
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    rows = [
        {"what": "(e) in-process, batch = clients", "clients": 32, "rps": 1000.0, "cpu_ms": 1.5, "load_cpu_ms": 0.0},
        {
            "what": "(f) gRPC floor: grpc.aio, canned answer, no model",
            "clients": 32,
            "rps": 3000.0,
            "cpu_ms": 0.4,
            "load_cpu_ms": 0.1,
        },
        {"what": "(b) gRPC, batching off", "clients": 32, "rps": 100.0},
        {"what": "(b) gRPC, batching on", "clients": 32, "rps": 600.0},
        {"what": "(e) in-process, batch = clients", "clients": 8, "rps": 800.0, "cpu_ms": 2.0, "load_cpu_ms": 0.0},
    ]
    (bound,) = grpc_bounds(rows)  # no floor measured at 8 clients: no bound there
    assert bound["clients"] == 32
    assert bound["bound_rps"] == pytest.approx(2 / 2.0 * 1000)
    assert bound["bound_vs_in_process"] == pytest.approx(1.0)
    assert bound["grpc_measured_vs_bound"] == pytest.approx(0.6)  # batching on, not off
    assert np.isfinite(bound["model_cpu_ms"])
