"""tensorflow.serving.PredictionService and ModelService over the stubs from tensorflow-serving-api.

The server is grpc.aio's: Predict is a coroutine on the event loop that awaits the batch
scheduler (no thread per waiting request, as REST's predict); the other calls are plain
methods that grpc.aio runs on its thread pool."""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import time
from concurrent import futures
from typing import Sequence

import grpc
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    model_management_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
    regression_pb2,
)

from serving.model_server import inference, tensors
from serving.model_server.config import ConfigError, SslConfig, check_model_config_list
from serving.model_server.errors import Admission, ServingError, invalid
from serving.model_server.manager import ModelManager
from serving.model_server.metrics import ServerMetrics

log = logging.getLogger("serving.model_server")


def target_of(model_spec) -> inference.Target:
    if not model_spec.name:
        raise invalid("Missing ModelSpec")
    version = model_spec.version.value if model_spec.HasField("version") else None
    return inference.Target(model_spec.name, version, model_spec.version_label or None, model_spec.signature_name)


_INFERENCE_APIS = frozenset(("predict", "classify", "regress", "multi_inference"))


class Undecodable:
    """What a request that is not a valid message deserializes to; its handler answers INVALID_ARGUMENT
    (gRPC's own deserializer failure would answer UNKNOWN or INTERNAL)."""

    def __init__(self, error: Exception) -> None:
        self.error = error


def _tolerant(deserialize):
    def read(data: bytes):
        try:
            return deserialize(data)
        except Exception as e:  # noqa: BLE001 - DecodeError, RecursionError: any bytes that are not the message
            return Undecodable(e)

    return read


class _TolerantService(grpc.GenericRpcHandler):
    """A service's method handlers with deserializers that never raise (`_rpc` turns an Undecodable
    into INVALID_ARGUMENT). Each method's handler is made once, on its first call: a server
    interceptor would remake it on every call, in a coroutine of its own, which cost about an eighth
    of gRPC's answers per second at 32 clients (BENCHMARKS.md, issue #13)."""

    def __init__(self, service: grpc.GenericRpcHandler) -> None:
        self._service = service
        self._made: dict[str, grpc.RpcMethodHandler] = {}  # only the service's own methods: a bounded set

    def service(self, handler_call_details):
        made = self._made.get(handler_call_details.method)
        if made is None:
            made = self._service.service(handler_call_details)
            if made is not None:
                if made.request_deserializer is not None:
                    made = made._replace(request_deserializer=_tolerant(made.request_deserializer))
                self._made[handler_call_details.method] = made
        return made


class _TolerantRegistration:
    """Stands in for the server in the generated `add_*Servicer_to_server` functions. tensorflow-serving-api's
    stubs register through `add_generic_rpc_handlers` only; stubs that also called
    `add_registered_method_handlers` would fail here at start-up, loudly, rather than register
    handlers that bypass the tolerant deserializers."""

    def __init__(self, server: grpc.aio.Server) -> None:
        self._server = server

    def add_generic_rpc_handlers(self, handlers) -> None:
        self._server.add_generic_rpc_handlers(tuple(_TolerantService(h) for h in handlers))


def _check_decoded(api: str, request) -> None:
    if isinstance(request, Undecodable):
        raise invalid(f"Could not parse the {api} request: {type(request.error).__name__}: {request.error}"[:300])


class _Call:
    """One RPC's metrics: the request count by outcome and the latency. It keeps the model's and
    signature's names, not the request's model_spec: a sub-message keeps its whole request alive."""

    __slots__ = ("api", "metrics", "started", "model", "signature", "code", "version")

    def __init__(self, api: str, request, metrics: ServerMetrics) -> None:
        self.api, self.metrics, self.started = api, metrics, time.perf_counter()
        spec = getattr(request, "model_spec", None)
        self.model: str | None = None if spec is None else spec.name
        self.signature: str = "" if spec is None else spec.signature_name
        self.code, self.version = "OK", ""

    def answered(self, response) -> None:
        if self.model is not None and hasattr(response, "model_spec") and response.HasField("model_spec"):
            self.version = str(response.model_spec.version.value)

    def done(self) -> None:
        if self.api in _INFERENCE_APIS:
            self.metrics.request_done(
                self.model or "",
                self.version,
                self.signature or "serving_default",
                self.api,
                "GRPC",
                self.code,
                (time.perf_counter() - self.started) * 1e6,
            )


def _rpc(api: str):
    """Turns ServingError into the RPC's status and records the request metrics; for plain
    methods (run on grpc.aio's thread pool) and coroutines (run on the event loop) alike."""

    def wrap(method):
        # A refusal aborts the call outside the `except`: raised inside it, grpc's abort exception
        # would chain the ServingError, whose traceback holds the handler's frames and so the
        # request, and grpc keeps its abort exception in the call's state, which the traceback's
        # frames reference in turn: a cycle that kept every refused request (50 MB each, at most)
        # alive until Python's next full GC pass.
        if inspect.iscoroutinefunction(method):

            @functools.wraps(method)
            async def async_handler(self, request, context):
                call = _Call(api, request, self.metrics)
                refusal = None
                try:
                    _check_decoded(api, request)
                    response = await method(self, request, context)
                    call.answered(response)
                    return response
                except ServingError as e:
                    call.code, refusal = e.code.name, (e.code, e.message)
                except asyncio.CancelledError:  # the deadline passed or the client cancelled: not answered
                    remaining = context.time_remaining()
                    call.code = "DEADLINE_EXCEEDED" if remaining is not None and remaining <= 0 else "CANCELLED"
                    raise
                except Exception:  # a bug: grpc answers UNKNOWN; counted so, not as OK
                    call.code = "UNKNOWN"
                    raise
                finally:
                    call.done()
                del request
                await context.abort(*refusal)

            return async_handler

        @functools.wraps(method)
        def handler(self, request, context):
            call = _Call(api, request, self.metrics)
            refusal = None
            try:
                _check_decoded(api, request)
                response = method(self, request, context)
                call.answered(response)
                return response
            except ServingError as e:
                call.code, refusal = e.code.name, (e.code, e.message)
            except Exception:  # a bug: grpc answers UNKNOWN; counted so, not as OK
                call.code = "UNKNOWN"
                raise
            finally:
                call.done()
            del request
            context.abort(*refusal)

        return handler

    return wrap


def _spec(response_spec, name: str, version: int, signature: str | None = None) -> None:
    response_spec.name = name
    response_spec.version.value = version
    if signature is not None:
        response_spec.signature_name = signature


class PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
    def __init__(
        self, manager: ModelManager, metrics: ServerMetrics, pool: futures.Executor, admission: Admission | None = None
    ) -> None:
        self.manager = manager
        self.metrics = metrics
        self.pool = pool  # model calls when batching is off
        self.admission = admission or Admission(1 << 30)

    @_rpc("predict")
    async def Predict(self, request, context):
        self.admission.check_deadline(context.time_remaining())
        with self.admission:
            return await self._predict(request)

    async def _predict(self, request):
        target = target_of(request.model_spec)
        if not request.inputs:
            raise invalid("input tensor map is empty")
        try:
            inputs = {k: tensors.to_ndarray(v) for k, v in request.inputs.items()}
        except (TypeError, ValueError) as e:
            raise invalid(f"cannot read input tensors: {e}") from None
        with self.manager.lease(target.model, target.version, target.label) as servable:
            signature, checked, wanted = inference.prepare_predict(
                servable, target.signature, inputs, request.output_filter
            )
            outputs = await servable.run_async(signature, checked, self.pool)
            version = servable.version
        response = predict_pb2.PredictResponse()
        _spec(response.model_spec, target.model, version, signature.name)
        for key in wanted or outputs:
            tensors.fill_tensor_proto(response.outputs[key], outputs[key])
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


# gRPC core's bound on calls that wait for the application to take them (server.h in grpc's core).
PENDING_SOFT_LIMIT = "grpc.server.max_pending_requests"
PENDING_HARD_LIMIT = "grpc.server.max_pending_requests_hard_limit"
# How long a connection may hold the server's descriptors and memory, unless `channel_arguments` say
# otherwise (gRPC's own defaults are 120 s for the handshake and forever for the rest):
# - one that has not finished its HTTP/2 (and TLS) handshake by then is closed;
# - one with no call in flight for `grpc.max_connection_idle_ms` is sent GOAWAY and closed, as REST closes
#   its idle connections (--rest_api_idle_timeout_seconds). A gRPC channel reconnects on its next call;
# - every connection is sent GOAWAY at `grpc.max_connection_age_ms` (gRPC adds +-10% jitter) and closed
#   at most `..._grace_ms` later. Python sees a call only once its whole message is in, so this is the
#   one bound on a call stalled half-way through its message. Calls in flight at the GOAWAY have the
#   grace to finish, new ones go to a new connection (which also spreads clients over replicas again
#   after a restart).
CONNECTION_LIMITS_MS = {
    "grpc.server_handshake_timeout_ms": 30_000,
    "grpc.max_connection_idle_ms": 30_000,
    "grpc.max_connection_age_ms": 60_000,
    "grpc.max_connection_age_grace_ms": 30_000,
}


async def start_grpc_server(
    manager: ModelManager,
    metrics: ServerMetrics,
    address: str,
    *,
    max_workers: int = 64,
    max_message_bytes: int = 64 << 20,
    channel_arguments: Sequence[tuple[str, object]] = (),
    reuse_port: bool = False,
    ssl: SslConfig | None = None,
    admission: Admission | None = None,
    max_pending: int = 0,
) -> tuple[grpc.aio.Server, int]:
    """A started grpc.aio server on the running event loop, and the port it bound. gRPC sets
    SO_REUSEPORT unless told otherwise, which would let a second server share a taken port
    silently: it is on only for replicas.

    `max_pending` bounds the calls gRPC's core holds for the event loop to take (the loop takes one
    call at a time, so they pile up there when it falls behind): from that many on, gRPC refuses new
    calls at random, and all of them at four times as many, in C and in microseconds, before Python sees
    them (grpcio 1.85 answers these CANCELLED). gRPC's own default, 1,000 to 3,000, holds seconds of
    work on a small machine: an overloaded server then spends its loop on calls whose clients have
    given up. `channel_arguments` naming `grpc.server.max_pending_requests` (and `..._hard_limit`)
    override it; 0 (the default here; the server's own default is
    ServerOptions.grpc_max_pending) leaves gRPC's."""
    options: list[tuple[str, object]] = [
        ("grpc.max_receive_message_length", max_message_bytes),
        ("grpc.max_send_message_length", max_message_bytes),
        ("grpc.so_reuseport", int(reuse_port)),
    ]
    given = {key for key, _ in channel_arguments}
    options += [(key, ms) for key, ms in CONNECTION_LIMITS_MS.items() if key not in given]
    if max_pending > 0:
        for key, value in ((PENDING_SOFT_LIMIT, max_pending), (PENDING_HARD_LIMIT, 4 * max_pending)):
            if key not in given:
                options.append((key, value))
    options += channel_arguments
    ms = dict(options)
    log.info(
        "gRPC connections: handshake within %s ms, closed after %s ms with no call, GOAWAY at %s ms of age"
        " and closed %s ms later",
        *(ms[key] for key in CONNECTION_LIMITS_MS),
    )
    pool = futures.ThreadPoolExecutor(max_workers, thread_name_prefix="grpc")
    server = grpc.aio.server(migration_thread_pool=pool, options=options)
    registration = _TolerantRegistration(server)
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
        PredictionService(manager, metrics, pool, admission), registration
    )
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(ModelService(manager, metrics), registration)
    try:
        if ssl is None:
            port = server.add_insecure_port(address)
        else:
            credentials = grpc.ssl_server_credentials(
                [(ssl.server_key.encode(), ssl.server_cert.encode())],
                root_certificates=ssl.custom_ca.encode() or None,
                require_client_auth=ssl.client_verify,
            )
            port = server.add_secure_port(address, credentials)
    except RuntimeError:
        port = 0
    if port == 0:
        raise OSError(f"cannot bind gRPC to {address}")
    await server.start()
    return server, port
