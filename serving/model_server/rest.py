"""TF Serving's REST API on aiohttp. Handlers run in a thread pool (the model releases the GIL),
so the event loop only moves bytes; every error becomes {"error": ...} with TF Serving's HTTP code."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import re
import time
from concurrent.futures import ThreadPoolExecutor

import grpc
from aiohttp import hdrs, web
from aiohttp.http_exceptions import HttpProcessingError
from google.protobuf import json_format
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from tensorflow_serving.apis import get_model_metadata_pb2

from serving.model_server import inference, json_codec
from serving.model_server.errors import Admission, BodyBudget, ServingError, invalid
from serving.model_server.manager import ModelManager
from serving.model_server.metrics import ServerMetrics

MODEL_PATH = re.compile(
    r"^/v1/models/(?P<name>[^/:]+)"
    r"(?:/versions/(?P<version>[0-9]+)|/labels/(?P<label>[^/:]+))?"
    r"(?:(?P<metadata>/metadata)|:(?P<verb>predict|classify|regress))?$"
)


@dataclasses.dataclass
class _Outcome:
    """What the request metrics are labelled with, filled in as a request is served."""

    model: str
    version: str = ""
    signature: str = ""
    code: str = "OK"
    close: bool = False  # the connection cannot carry another request (its body could not be read)


def _as_serving_error(error: Exception) -> ServingError:
    """The status a failed request answers with: its own, or the client's error for bodies nested past
    every depth check or holding text that is not Unicode, or DEADLINE_EXCEEDED for the REST timeout."""
    if isinstance(error, ServingError):
        return error
    if isinstance(error, RecursionError):
        return invalid(json_codec.TOO_DEEP)
    if isinstance(error, UnicodeError):
        return invalid(f"JSON Parse error: {error}")
    return ServingError(grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline exceeded")


def _payload_error(error: Exception) -> str:
    """aiohttp's reason for a body it could not read, on one line without its "400, message:" prefix."""
    text = " ".join(str(error).split())
    return text.removeprefix("400, message:").strip()[:200]


class _MalformedHttpOnOneLine(logging.Filter):
    """aiohttp answers a malformed HTTP message (a bad chunk size, a duplicate Content-Length, an
    encoding it cannot decode) with a 400 and logs it at ERROR with a traceback: a client could fill
    the log with tracebacks. Those records become one WARNING line each; other errors are untouched."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, HttpProcessingError) and 400 <= (error.code or 0) < 500:
            reason = " ".join(str(error.message).split())[:200]
            record.msg, record.args = f"{record.getMessage()}: {error.code} {reason}", ()
            record.exc_info = record.exc_text = None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


_ONE_LINE = _MalformedHttpOnOneLine()


class RestApi:
    def __init__(
        self,
        manager: ModelManager,
        metrics: ServerMetrics,
        *,
        num_threads: int = 64,
        timeout_ms: int = 30_000,
        max_request_bytes: int = 64 << 20,
        max_body_bytes_in_flight: int = 1 << 30,
        monitoring_path: str | None = None,
        admission: Admission | None = None,
    ) -> None:
        self.manager = manager
        self.admission = admission or Admission(1 << 30)
        self.metrics = metrics
        self.pool = ThreadPoolExecutor(num_threads, thread_name_prefix="rest")
        self.timeout = timeout_ms / 1000 if timeout_ms > 0 else None
        # A body must arrive within the REST timeout, and within 30 s where that is off: a body still
        # arriving holds a reservation in the body budget, so no timeout would let slow senders keep it.
        self.body_timeout = self.timeout or 30.0
        self.max_request_bytes = max_request_bytes
        self.bodies = BodyBudget(max_body_bytes_in_flight)
        self.monitoring_path = monitoring_path

    def app(self) -> web.Application:
        logging.getLogger("aiohttp.server").addFilter(_ONE_LINE)  # once, however many apps
        app = web.Application(client_max_size=self.max_request_bytes, middlewares=[self._errors_as_json])
        app.router.add_route("*", "/v1/models/{tail:.*}", self.models)
        if self.monitoring_path:
            app.router.add_get(self.monitoring_path, self.prometheus)
        return app

    @web.middleware
    async def _errors_as_json(self, request: web.Request, handler):
        try:
            return await handler(request)
        except web.HTTPException as e:
            if e.status < 400:
                raise
            return web.json_response({"error": e.reason if e.text is None else e.text.strip()}, status=e.status)

    async def prometheus(self, request: web.Request) -> web.Response:
        body = generate_latest(self.metrics.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def models(self, request: web.Request) -> web.Response:
        started = time.perf_counter()
        match = MODEL_PATH.match(request.path)
        verb = match and match["verb"]
        outcome = _Outcome(match["name"] if match else "")
        try:
            if not match or (request.method == "GET") == bool(verb) or request.method not in ("GET", "POST"):
                raise invalid(f"Malformed request: {request.method} {request.path}")
            with contextlib.ExitStack() as held:
                body = b""
                if verb:
                    body = await self._read_body(request, held, outcome)
                    held.enter_context(self.admission)
                async with asyncio.timeout(self.timeout):
                    if verb == "predict":
                        payload = await self._predict(match, body, outcome)
                    else:
                        payload = await asyncio.get_running_loop().run_in_executor(
                            self.pool, self._handle, match, body, outcome
                        )
            status = 200
        except (ServingError, RecursionError, UnicodeError, TimeoutError) as error:
            e = _as_serving_error(error)
            outcome.code = e.code.name
            status, payload = e.http_status, {"error": e.message}
            del e  # its traceback holds this frame: a cycle that kept each refused body alive until a GC pass
        except asyncio.CancelledError:  # the client closed its connection: counted, not answered
            outcome.code = "CANCELLED"
            raise
        except Exception:  # a bug: aiohttp answers 500; counted as what it is, not as OK
            outcome.code = "UNKNOWN"
            raise
        finally:
            if verb:
                self.metrics.request_done(
                    outcome.model,
                    outcome.version,
                    outcome.signature or "serving_default",
                    verb,
                    "REST",
                    outcome.code,
                    (time.perf_counter() - started) * 1e6,
                )
        response = web.Response(body=json_codec.dumps(payload), status=status, content_type="application/json")
        if outcome.close:
            response.force_close()
        return response

    async def _read_body(self, request: web.Request, held: contextlib.ExitStack, outcome: _Outcome) -> bytes:
        """The request's body, within the REST timeout, the size limit and the body budget (its
        reservation held until the answer is ready). A client that sends its body slower than that
        gets 408, and until then holds neither a place in Admission nor more memory than it sent.
        aiohttp inflates gzip and deflate bodies as they are read: the limit and the budget count
        the inflated bytes, so a small compressed body cannot make the server hold gigabytes."""
        size = request.content_length or 0
        if size > self.max_request_bytes:
            raise self._too_large()
        reservation = held.enter_context(self.bodies.reserve(size))
        body = bytearray()
        try:
            async with asyncio.timeout(self.body_timeout):
                while chunk := await request.content.readany():
                    body += chunk
                    if len(body) > self.max_request_bytes:
                        if request.headers.get(hdrs.CONTENT_ENCODING, "identity") != "identity":
                            # Not drained: aiohttp would inflate the rest only to discard it (about
                            # 0.7 s of CPU per megabyte of gzip bomb); the connection is closed instead.
                            outcome.close = True
                            request.content.feed_eof()
                        raise self._too_large()
                    reservation.grow(len(body))
            return bytes(body)
        except TimeoutError:
            raise ServingError(
                grpc.StatusCode.DEADLINE_EXCEEDED,
                f"Request body not received within {self.body_timeout * 1000:.0f} ms",
                http_status=408,
            ) from None
        except web.RequestPayloadError as e:  # not the gzip or deflate it claims to be, or a broken chunk
            # The rest of the body cannot be read either: the answer closes the connection, and the
            # stream is marked ended so that aiohttp does not read it again after the answer (it
            # would log the same error as an unhandled exception).
            outcome.close = True
            request.content.feed_eof()
            raise invalid(f"Could not read the request body: {_payload_error(e)}") from None
        finally:
            body.clear()  # a refused body's bytes go now, not when its exception's traceback is collected

    def _too_large(self) -> ServingError:
        """gRPC's status for a message over its limit, with aiohttp's words and HTTP status for it."""
        message = f"Maximum request body size {self.max_request_bytes} exceeded."
        return ServingError(grpc.StatusCode.RESOURCE_EXHAUSTED, message, http_status=413)

    async def _predict(self, match: re.Match, body: bytes, outcome: _Outcome) -> dict:
        """Parsing and encoding run on the event loop; the model call goes to the batch scheduler
        (awaited without a thread of its own) or, with batching off, to the thread pool."""
        version = int(match["version"]) if match["version"] else None
        request = json_codec.parse_body(body)
        signature_name = json_codec.signature_name(request)
        outcome.signature = signature_name
        with self.manager.lease(outcome.model, version, match["label"]) as servable:
            outcome.version = str(servable.version)
            # The JSON codec needs the signature's dtypes to decode; the checks are gRPC's.
            inputs, form = json_codec.predict_inputs(request, servable.signature(signature_name))
            signature, checked, _ = inference.prepare_predict(servable, signature_name, inputs)
            outputs = await servable.run_async(signature, checked, self.pool)
        return json_codec.predict_response(outputs, form)

    def _handle(self, match: re.Match, body: bytes, outcome: _Outcome) -> dict:
        """Status, metadata, classify and regress, on a pool thread."""
        name, verb = match["name"], match["verb"]
        version = int(match["version"]) if match["version"] else None
        label = match["label"]
        if not verb:
            if match["metadata"]:
                target = inference.Target(name, version, label)
                served_version, signature_defs = inference.metadata(self.manager, target)
                signature_map = get_model_metadata_pb2.SignatureDefMap(signature_def=signature_defs)
                return {
                    "model_spec": {"name": name, "signature_name": "", "version": str(served_version)},
                    "metadata": {
                        "signature_def": json_format.MessageToDict(signature_map, preserving_proto_field_name=True)
                    },
                }
            return json_format.MessageToDict(
                self.manager.status_response(name, version, label),
                preserving_proto_field_name=True,
                including_default_value_fields=True,
            )
        request = json_codec.parse_body(body)
        signature_name = json_codec.signature_name(request)
        outcome.signature = signature_name
        target = inference.Target(name, version, label, signature_name)
        request_input = json_codec.examples_input(request)
        if verb == "classify":
            answer = inference.classify(self.manager, target, request_input)
            outcome.version = str(answer.version)
            return json_codec.classify_response(answer.outputs)
        answer = inference.regress(self.manager, target, request_input)
        outcome.version = str(answer.version)
        return json_codec.regress_response(answer.outputs)

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)
