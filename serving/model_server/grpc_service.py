"""tensorflow.serving.PredictionService and ModelService over the stubs from tensorflow-serving-api."""
from __future__ import annotations

import functools
import time
from concurrent import futures

import grpc
import tensorflow as tf
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    model_management_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
    regression_pb2,
)

from serving.model_server import inference
from serving.model_server.config import ConfigError, check_model_config_list
from serving.model_server.errors import ServingError, invalid
from serving.model_server.manager import ModelManager
from serving.model_server.metrics import ServerMetrics


def target_of(model_spec) -> inference.Target:
    if not model_spec.name:
        raise invalid("Missing ModelSpec")
    version = model_spec.version.value if model_spec.HasField("version") else None
    return inference.Target(model_spec.name, version, model_spec.version_label or None, model_spec.signature_name)


def _rpc(api: str):
    """Turns ServingError into the RPC's status and records the request metrics."""

    def wrap(method):
        @functools.wraps(method)
        def handler(self, request, context):
            started = time.perf_counter()
            spec = getattr(request, "model_spec", None)
            name = spec.name if spec is not None else ""
            signature = (spec.signature_name if spec is not None else "") or "serving_default"
            code, version = "OK", ""
            try:
                response = method(self, request, context)
                if spec is not None and hasattr(response, "model_spec") and response.HasField("model_spec"):
                    version = str(response.model_spec.version.value)
                return response
            except ServingError as e:
                code = e.code.name
                context.abort(e.code, e.message)
            finally:
                if api in ("predict", "classify", "regress", "multi_inference"):
                    self.metrics.request_count.labels(name, version, signature, api, "GRPC", code).inc()
                    self.metrics.request_latency.labels(name, api, "GRPC").observe((time.perf_counter() - started) * 1e6)

        return handler

    return wrap


def _spec(response_spec, name: str, version: int, signature: str | None = None) -> None:
    response_spec.name = name
    response_spec.version.value = version
    if signature is not None:
        response_spec.signature_name = signature


class PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
    def __init__(self, manager: ModelManager, metrics: ServerMetrics) -> None:
        self.manager = manager
        self.metrics = metrics

    @_rpc("predict")
    def Predict(self, request, context):
        target = target_of(request.model_spec)
        if not request.inputs:
            raise invalid("input tensor map is empty")
        try:
            inputs = {k: tf.make_ndarray(v) for k, v in request.inputs.items()}
        except (TypeError, ValueError) as e:
            raise invalid(f"cannot read input tensors: {e}") from None
        answer = inference.predict(self.manager, target, inputs, request.output_filter)
        response = predict_pb2.PredictResponse()
        _spec(response.model_spec, target.model, answer.version, answer.signature)
        for key, value in answer.outputs.items():
            response.outputs[key].CopyFrom(tf.make_tensor_proto(value))
        return response

    def _examples_rpc(self, request, run, response_class):
        """Classify and Regress: serialized tf.Examples in, a result message out."""
        target = target_of(request.model_spec)
        answer = run(self.manager, target, request.input)
        response = response_class(result=answer.outputs)
        _spec(response.model_spec, target.model, answer.version, answer.signature)
        return response

    @_rpc("classify")
    def Classify(self, request, context):
        return self._examples_rpc(request, inference.classify, classification_pb2.ClassificationResponse)

    @_rpc("regress")
    def Regress(self, request, context):
        return self._examples_rpc(request, inference.regress, regression_pb2.RegressionResponse)

    @_rpc("multi_inference")
    def MultiInference(self, request, context):
        return inference.multi_inference(self.manager, request)

    @_rpc("metadata")
    def GetModelMetadata(self, request, context):
        target = target_of(request.model_spec)
        if not request.metadata_field:
            raise invalid("GetModelMetadataRequest must specify at least one metadata_field")
        unsupported = [f for f in request.metadata_field if f != "signature_def"]
        if unsupported:
            raise invalid(f"Metadata field {unsupported[0]} is not supported")
        version, signature_defs = inference.metadata(self.manager, target)
        response = get_model_metadata_pb2.GetModelMetadataResponse()
        _spec(response.model_spec, target.model, version)
        response.metadata["signature_def"].Pack(get_model_metadata_pb2.SignatureDefMap(signature_def=signature_defs))
        return response


class ModelService(model_service_pb2_grpc.ModelServiceServicer):
    def __init__(self, manager: ModelManager, metrics: ServerMetrics) -> None:
        self.manager = manager
        self.metrics = metrics

    @_rpc("status")
    def GetModelStatus(self, request, context):
        target = target_of(request.model_spec)
        return self.manager.status_response(target.model, target.version, target.label)

    @_rpc("reload")
    def HandleReloadConfigRequest(self, request, context):
        response = model_management_pb2.ReloadConfigResponse()
        if request.config.WhichOneof("config") != "model_config_list":
            raise invalid("ReloadConfigRequest: only model_config_list is supported")
        try:
            check_model_config_list(request.config, "ReloadConfigRequest")
        except ConfigError as e:
            raise invalid(str(e)) from None
        try:
            self.manager.reload(request.config)
        except ServingError as e:
            response.status.error_code = e.error_code
            response.status.error_message = e.message
        return response


def make_grpc_server(manager: ModelManager, metrics: ServerMetrics, address: str, *,
                     max_workers: int = 64, max_message_bytes: int = 64 << 20,
                     channel_arguments: list[tuple[str, object]] = ()) -> tuple[grpc.Server, int]:
    options = [("grpc.max_receive_message_length", max_message_bytes),
               ("grpc.max_send_message_length", max_message_bytes), *channel_arguments]
    server = grpc.server(futures.ThreadPoolExecutor(max_workers, thread_name_prefix="grpc"), options=options)
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(PredictionService(manager, metrics), server)
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(ModelService(manager, metrics), server)
    port = server.add_insecure_port(address)
    if port == 0:
        raise OSError(f"cannot bind gRPC to {address}")
    return server, port
