"""The model server serves SavedModels it did not train (plain tf.saved_model.save, Keras 3 and
tf_keras `model.export`, a TF1 Builder graph with classify and regress signatures), over REST
and over gRPC with TensorFlow Serving's own protos and stubs."""

from __future__ import annotations

import os
import subprocess
import sys

import grpc
import numpy as np
import pytest
import requests
import tensorflow as tf
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    predict_pb2,
    regression_pb2,
)

from tests.conftest import ROOT
from tests.serving.conftest import prediction_stub, serving
from tests.serving.foreign_models import expected_dense

FEATURES = np.array([[1.0, 2.0, 3.0], [0.0, -1.0, 0.5]], np.float32)


@pytest.fixture(scope="module")
def foreign_server(tmp_path_factory):
    base = str(tmp_path_factory.mktemp("foreign"))
    subprocess.run(
        [sys.executable, "-m", "tests.serving.foreign_models", base],
        cwd=ROOT,
        check=True,
        capture_output=True,
        timeout=300,
    )
    with serving(os.path.join(base, "models.config"), tmp_path_factory, "foreign") as server:
        yield server


@pytest.fixture(scope="module")
def stub(foreign_server):
    with prediction_stub(foreign_server) as stub:
        yield stub


def rest(server, path, body):
    response = requests.post(f"{server.rest_url}/v1/models/{path}", json=body, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


def test_a_plain_tf_module_over_rest_and_grpc(foreign_server, stub):
    answer = rest(foreign_server, "module:predict", {"instances": [1.0, 2.0, -1.0]})
    assert answer["predictions"] == [
        {"y": 4.0, "doubled": 2.0},
        {"y": 7.0, "doubled": 4.0},
        {"y": -2.0, "doubled": -2.0},
    ]
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "module"
    request.inputs["x"].CopyFrom(tf.make_tensor_proto([0.5, 10.0], dtype=tf.float32))
    request.output_filter.append("y")
    response = stub.Predict(request, timeout=30)
    assert list(response.outputs) == ["y"]
    np.testing.assert_allclose(tf.make_ndarray(response.outputs["y"]), [2.5, 31.0])
    assert response.model_spec.version.value == 1


@pytest.mark.parametrize("model", ["keras3", "tf_keras"])
def test_keras_model_export_over_rest_and_grpc(foreign_server, stub, model):
    expected = expected_dense(FEATURES)
    answer = rest(foreign_server, f"{model}:predict", {"inputs": {"features": FEATURES.tolist()}})
    np.testing.assert_allclose(answer["outputs"], expected, rtol=1e-6)
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model
    request.inputs["features"].CopyFrom(tf.make_tensor_proto(FEATURES))
    response = stub.Predict(request, timeout=30)
    (output,) = response.outputs.values()
    np.testing.assert_allclose(tf.make_ndarray(output), expected, rtol=1e-6)


def example(x: float) -> tf.train.Example:
    return tf.train.Example(
        features=tf.train.Features(feature={"x": tf.train.Feature(float_list=tf.train.FloatList(value=[x]))})
    )


def test_a_tf1_graph_predicts_classifies_and_regresses(foreign_server, stub):
    answer = rest(foreign_server, "tf1:predict", {"instances": [[1.0], [0.5]]})
    assert answer["predictions"] == [[2.0], [0.0]]
    classified = rest(
        foreign_server, "tf1:classify", {"signature_name": "classify_x", "examples": [{"x": 0.0}, {"x": 2.0}]}
    )
    first, second = classified["result"]
    assert [label for label, _ in first] == ["low", "high"]
    assert first[0][1] == pytest.approx(0.5) and second[1][1] == pytest.approx(1 / (1 + np.exp(-2.0)), rel=1e-5)
    regressed = rest(foreign_server, "tf1:regress", {"signature_name": "regress_x", "examples": [{"x": 1.5}]})
    assert regressed["result"] == [pytest.approx(4.0)]

    request = classification_pb2.ClassificationRequest()
    request.model_spec.name, request.model_spec.signature_name = "tf1", "classify_x"
    request.input.example_list.examples.extend([example(-1.0)])
    result = stub.Classify(request, timeout=30).result.classifications[0]
    assert [c.label for c in result.classes] == ["low", "high"]
    assert result.classes[1].score == pytest.approx(1 / (1 + np.exp(1.0)), rel=1e-5)
    request = regression_pb2.RegressionRequest()
    request.model_spec.name, request.model_spec.signature_name = "tf1", "regress_x"
    request.input.example_list.examples.extend([example(0.25), example(3.0)])
    assert [r.value for r in stub.Regress(request, timeout=30).result.regressions] == pytest.approx([-1.0, 10.0])


def test_a_tf1_classify_signature_refuses_predict_style_misuse_with_tf_servings_message(foreign_server, stub):
    request = regression_pb2.RegressionRequest()
    request.model_spec.name, request.model_spec.signature_name = "tf1", "classify_x"
    request.input.example_list.examples.extend([example(1.0)])
    with pytest.raises(grpc.RpcError) as raised:
        stub.Regress(request, timeout=30)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "Expected regression signature method_name to be tensorflow/serving/regress" in raised.value.details()


def test_metadata_of_foreign_models_lists_their_signatures(foreign_server, stub):
    request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
    request.model_spec.name = "tf1"
    response = stub.GetModelMetadata(request, timeout=30)
    signatures = get_model_metadata_pb2.SignatureDefMap()
    response.metadata["signature_def"].Unpack(signatures)
    methods = {name: s.method_name for name, s in signatures.signature_def.items()}
    assert methods == {
        "serving_default": "tensorflow/serving/predict",
        "classify_x": "tensorflow/serving/classify",
        "regress_x": "tensorflow/serving/regress",
    }
    answer = requests.get(f"{foreign_server.rest_url}/v1/models/keras3/metadata", timeout=30).json()
    assert "serving_default" in answer["metadata"]["signature_def"]["signature_def"]
