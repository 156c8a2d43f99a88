"""tensorflow.serving.PredictionService and ModelService over real gRPC, with the stubs from tensorflow-serving-api."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    inference_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
    regression_pb2,
)

State = get_model_status_pb2.ModelVersionStatus.State


@pytest.fixture(scope="module")
def channel(api_server):
    with grpc.insecure_channel(api_server.grpc_target) as channel:
        yield channel


@pytest.fixture(scope="module")
def predictions(channel):
    return prediction_service_pb2_grpc.PredictionServiceStub(channel)


@pytest.fixture(scope="module")
def models(channel):
    return model_service_pb2_grpc.ModelServiceStub(channel)


def predict_request(model="toy", signature="", version=None, label=None, **inputs):
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model
    request.model_spec.signature_name = signature
    if version is not None:
        request.model_spec.version.value = version
    if label:
        request.model_spec.version_label = label
    for key, value in inputs.items():
        request.inputs[key].CopyFrom(tf.make_tensor_proto(value))
    return request


def examples(*xs):
    from tensorflow_serving.apis import input_pb2

    request_input = input_pb2.Input()
    for x in xs:
        request_input.example_list.examples.add().features.feature["x"].float_list.value.append(x)
    return request_input


def test_predict_answers_with_the_version_and_signature_that_ran(predictions):
    response = predictions.Predict(predict_request(x=np.array([2.0, 4.0], np.float32)), timeout=30)
    assert response.model_spec.name == "toy"
    assert response.model_spec.version.value == 2
    assert response.model_spec.signature_name == "serving_default"
    np.testing.assert_allclose(tf.make_ndarray(response.outputs["y"]), [3.0, 4.0])


def test_predict_by_version_label_and_output_filter(predictions):
    request = predict_request(
        signature="multi", label="stable", x=np.array([2.0], np.float32), tag=np.array([b"a"], object)
    )
    request.output_filter.append("upper")
    response = predictions.Predict(request, timeout=30)
    assert response.model_spec.version.value == 1
    assert list(response.outputs) == ["upper"]
    assert tf.make_ndarray(response.outputs["upper"]).tolist() == [b"A"]


def test_classify_regress_and_multi_inference(predictions):
    classify = classification_pb2.ClassificationRequest(input=examples(12.0))
    classify.model_spec.name, classify.model_spec.signature_name = "toy", "classify"
    result = predictions.Classify(classify, timeout=30).result
    assert [c.label for c in result.classifications[0].classes] == ["low", "high"]
    assert result.classifications[0].classes[1].score > 0.99

    regress = regression_pb2.RegressionRequest(input=examples(2.0, 4.0))
    regress.model_spec.name, regress.model_spec.signature_name = "toy", "regress"
    response = predictions.Regress(regress, timeout=30)
    assert [r.value for r in response.result.regressions] == [3.0, 4.0]
    assert response.model_spec.version.value == 2

    multi = inference_pb2.MultiInferenceRequest(input=examples(2.0))
    for signature, method in (("classify", "tensorflow/serving/classify"), ("regress", "tensorflow/serving/regress")):
        task = multi.tasks.add(method_name=method)
        task.model_spec.name, task.model_spec.signature_name = "toy", signature
    results = predictions.MultiInference(multi, timeout=30).results
    assert results[0].classification_result.classifications[0].classes[0].label == "low"
    assert results[1].regression_result.regressions[0].value == 3.0


def test_metadata_packs_the_signature_def_map(predictions):
    request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
    request.model_spec.name = "other"
    response = predictions.GetModelMetadata(request, timeout=30)
    assert response.model_spec.version.value == 5
    signature_map = get_model_metadata_pb2.SignatureDefMap()
    assert response.metadata["signature_def"].Unpack(signature_map)
    assert signature_map.signature_def["regress"].method_name == "tensorflow/serving/regress"


def test_model_status_reports_versions_and_states(models):
    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = "toy"
    statuses = models.GetModelStatus(request, timeout=30).model_version_status
    assert sorted(s.version for s in statuses) == [1, 2]
    assert all(s.state == State.AVAILABLE and s.status.error_code == 0 for s in statuses)


@pytest.mark.parametrize(
    "request_factory,code",
    [
        (lambda: predict_request(model="nope", x=np.array([1.0], np.float32)), grpc.StatusCode.NOT_FOUND),
        (lambda: predict_request(version=7, x=np.array([1.0], np.float32)), grpc.StatusCode.NOT_FOUND),
        (lambda: predict_request(label="beta", x=np.array([1.0], np.float32)), grpc.StatusCode.NOT_FOUND),
        (lambda: predict_request(), grpc.StatusCode.INVALID_ARGUMENT),
        (lambda: predict_request(z=np.array([1.0], np.float32)), grpc.StatusCode.INVALID_ARGUMENT),
        (lambda: predict_request(x=np.array([[1.0]], np.float32)), grpc.StatusCode.INVALID_ARGUMENT),
        (lambda: predict_request(x=np.array([b"a"], object)), grpc.StatusCode.INVALID_ARGUMENT),
        (lambda: predict_request(signature="nope", x=np.array([1.0], np.float32)), grpc.StatusCode.INVALID_ARGUMENT),
        (lambda: predict_request(model=""), grpc.StatusCode.INVALID_ARGUMENT),
    ],
)
def test_bad_predict_requests_get_tf_serving_status_codes(predictions, request_factory, code):
    with pytest.raises(grpc.RpcError) as raised:
        predictions.Predict(request_factory(), timeout=30)
    assert raised.value.code() == code
    assert raised.value.details()


@pytest.mark.parametrize(
    "method",
    [
        "PredictionService/Predict",
        "PredictionService/Classify",
        "PredictionService/GetModelMetadata",
        "ModelService/GetModelStatus",
        "ModelService/HandleReloadConfigRequest",
    ],
)
@pytest.mark.parametrize("payload", [b"\xff\xff\xff", b"\x0a\x05ab", b"\x12" + b"\x0a\x7f" * 3, b"\x0a" * 50])
def test_bytes_that_are_not_the_request_message_are_invalid_argument(channel, method, payload):
    call = channel.unary_unary(
        f"/tensorflow.serving.{method}",
        request_serializer=lambda raw: raw,
        response_deserializer=lambda raw: raw,
    )
    with pytest.raises(grpc.RpcError) as raised:
        call(payload, timeout=30)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT, raised.value.details()
    assert "Could not parse" in raised.value.details()


def test_unknown_methods_are_unimplemented_and_the_known_ones_still_answer(channel, predictions):
    for i in range(50):  # names a client made up: nothing of them is kept
        call = channel.unary_unary(f"/tensorflow.serving.PredictionService/Made{i}", lambda raw: raw, lambda raw: raw)
        with pytest.raises(grpc.RpcError) as raised:
            call(b"", timeout=30)
        assert raised.value.code() == grpc.StatusCode.UNIMPLEMENTED
    response = predictions.Predict(predict_request(x=np.array([2.0], np.float32)), timeout=30)
    assert tf.make_ndarray(response.outputs["y"]).tolist() == [3.0]


def test_a_string_tensor_with_a_negative_dimension_is_invalid_argument(predictions):
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "toy"
    tensor = request.inputs["x"]
    tensor.dtype = tf.string.as_datatype_enum
    tensor.tensor_shape.dim.add().size = -1
    tensor.string_val.append(b"a")
    with pytest.raises(grpc.RpcError) as raised:
        predictions.Predict(request, timeout=30)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "must be >= 0" in raised.value.details()


def test_unknown_model_status_is_not_found(models):
    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = "nope"
    with pytest.raises(grpc.RpcError) as raised:
        models.GetModelStatus(request, timeout=30)
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND


def test_message_over_the_request_limit_is_resource_exhausted(predictions):
    big = predict_request(x=np.zeros(400_000, np.float32))  # 1.6 MB > the server's 1 MiB limit
    with pytest.raises(grpc.RpcError) as raised:
        predictions.Predict(big, timeout=30)
    assert raised.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


def test_a_request_past_its_deadline_is_counted_so_not_ok(api_server, predictions):
    from tests.serving.model_server.test_rest_api import request_counts

    before = request_counts(api_server, "slow", "GRPC")

    def call(_):
        try:
            predictions.Predict(predict_request(signature="slow", x=np.array([1.0], np.float32)), timeout=0.01)
            return "OK"
        except grpc.RpcError as e:
            return e.code().name

    with ThreadPoolExecutor(8) as pool:
        outcomes = list(pool.map(call, range(16)))
    assert "DEADLINE_EXCEEDED" in outcomes, outcomes
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        after = request_counts(api_server, "slow", "GRPC")
        if sum(after.values()) - sum(before.values()) >= outcomes.count("OK") + 1:
            break
        time.sleep(0.2)
    unanswered = sum(after.get(k, 0) - before.get(k, 0) for k in ("DEADLINE_EXCEEDED", "CANCELLED"))
    assert unanswered >= 1, (before, after)
    assert sum(after.values()) - sum(before.values()) <= 16, (before, after)  # each counted once
