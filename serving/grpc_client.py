"""The gRPC half of serving/client.py: TF Serving's PredictionService and ModelService stubs.

Imported by `serving.client.GrpcClient` on first use, so the REST client needs neither
TensorFlow nor grpcio."""

from __future__ import annotations

import time

import grpc
import numpy as np
import tensorflow as tf
from google.protobuf import json_format
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_management_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from serving.client import ModelServerError, Prediction, ServerUnavailable, VersionStatus

STATE_NAMES = {v: k for k, v in get_model_status_pb2.ModelVersionStatus.State.items()}


def _feature(value) -> tf.train.Feature:
    values = value if isinstance(value, (list, tuple, np.ndarray)) else [value]
    values = [v.item() if isinstance(v, np.generic) else v for v in values]
    if all(isinstance(v, (bytes, str)) for v in values):
        return tf.train.Feature(
            bytes_list=tf.train.BytesList(value=[v.encode() if isinstance(v, str) else v for v in values])
        )
    if all(isinstance(v, int) for v in values):
        return tf.train.Feature(int64_list=tf.train.Int64List(value=values))
    return tf.train.Feature(float_list=tf.train.FloatList(value=values))


class GrpcClient:
    transport = "grpc"

    def __init__(
        self, target: str = "127.0.0.1:8500", timeout: float = 30.0, max_message_bytes: int = 64 << 20
    ) -> None:
        self.target = target
        self.timeout = timeout
        options = [
            ("grpc.max_receive_message_length", max_message_bytes),
            ("grpc.max_send_message_length", max_message_bytes),
        ]
        self._channel = grpc.insecure_channel(target, options=options)
        self._predictions = prediction_service_pb2_grpc.PredictionServiceStub(self._channel)
        self._models = model_service_pb2_grpc.ModelServiceStub(self._channel)

    def _rpc(self, method, request):
        try:
            return method(request, timeout=self.timeout)
        except grpc.RpcError as e:
            if e.code() == grpc.StatusCode.UNAVAILABLE:
                raise ServerUnavailable(f"model server at {self.target}: {e.details()}") from None
            raise ModelServerError(e.code().name, e.details() or "") from None

    @staticmethod
    def _spec(spec, model: str, version: int | None, label: str | None, signature_name: str = "") -> None:
        spec.name = model
        if version is not None:
            spec.version.value = version
        elif label:
            spec.version_label = label
        if signature_name:
            spec.signature_name = signature_name

    def status(self, model: str, version: int | None = None, label: str | None = None) -> list[VersionStatus]:
        request = get_model_status_pb2.GetModelStatusRequest()
        self._spec(request.model_spec, model, version, label)
        response = self._rpc(self._models.GetModelStatus, request)
        from tensorflow_serving.apis import status_pb2  # noqa: F401 - registers the error-code enum names

        return [
            VersionStatus(
                s.version,
                STATE_NAMES.get(s.state, str(s.state)),
                grpc.StatusCode.OK.name if s.status.error_code == 0 else _code_name(s.status.error_code),
                s.status.error_message,
            )
            for s in response.model_version_status
        ]

    def metadata(self, model: str, version: int | None = None) -> dict:
        request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
        self._spec(request.model_spec, model, version, None)
        response = self._rpc(self._predictions.GetModelMetadata, request)
        signature_map = get_model_metadata_pb2.SignatureDefMap()
        response.metadata["signature_def"].Unpack(signature_map)
        return {
            "model_spec": json_format.MessageToDict(response.model_spec, preserving_proto_field_name=True),
            "metadata": {"signature_def": json_format.MessageToDict(signature_map, preserving_proto_field_name=True)},
        }

    def predict(
        self, model: str, inputs: dict, signature_name: str = "", version: int | None = None, label: str | None = None
    ) -> Prediction:
        started = time.perf_counter()
        request = predict_pb2.PredictRequest()
        self._spec(request.model_spec, model, version, label, signature_name)
        for key, value in inputs.items():
            array = np.asarray(value, dtype=object) if _is_bytes_list(value) else np.asarray(value)
            request.inputs[key].CopyFrom(tf.make_tensor_proto(array))
        response = self._rpc(self._predictions.Predict, request)
        outputs = {k: tf.make_ndarray(v) for k, v in response.outputs.items()}
        return Prediction(
            outputs, model, response.model_spec.version.value, self.transport, time.perf_counter() - started
        )

    def _input(self, examples: list[dict]):
        from tensorflow_serving.apis import input_pb2

        request_input = input_pb2.Input()
        for example in examples:
            request_input.example_list.examples.add().CopyFrom(
                tf.train.Example(features=tf.train.Features(feature={k: _feature(v) for k, v in example.items()}))
            )
        return request_input

    def classify(self, model: str, examples: list[dict], signature_name: str = "", version: int | None = None) -> list:
        from tensorflow_serving.apis import classification_pb2

        request = classification_pb2.ClassificationRequest(input=self._input(examples))
        self._spec(request.model_spec, model, version, None, signature_name)
        response = self._rpc(self._predictions.Classify, request)
        return [[[c.label, c.score] for c in row.classes] for row in response.result.classifications]

    def regress(
        self, model: str, examples: list[dict], signature_name: str = "", version: int | None = None
    ) -> list[float]:
        from tensorflow_serving.apis import regression_pb2

        request = regression_pb2.RegressionRequest(input=self._input(examples))
        self._spec(request.model_spec, model, version, None, signature_name)
        response = self._rpc(self._predictions.Regress, request)
        return [r.value for r in response.result.regressions]

    def reload_config(self, config) -> None:
        """HandleReloadConfigRequest with a ModelServerConfig; raises on a non-OK status."""
        request = model_management_pb2.ReloadConfigRequest(config=config)
        response = self._rpc(self._models.HandleReloadConfigRequest, request)
        if response.status.error_code:
            raise ModelServerError(_code_name(response.status.error_code), response.status.error_message)

    def close(self) -> None:
        self._channel.close()


def _is_bytes_list(value) -> bool:
    if isinstance(value, (bytes, str)):
        return True
    if isinstance(value, (list, tuple)) and value:
        return _is_bytes_list(value[0])
    return False


def _code_name(number: int) -> str:
    for code in grpc.StatusCode:
        if code.value[0] == number:
            return code.name
    return str(number)
