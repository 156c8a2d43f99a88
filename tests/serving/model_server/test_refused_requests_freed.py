"""A refused request's memory goes when its answer is sent, not at Python's next full GC pass.

Both APIs kept refused requests in reference cycles: REST through the exception the handler kept
in a local (its traceback holds the handler's own frame, and so the body), gRPC through grpc.aio's
abort exception (kept in the call's state, which the traceback's frames reference) chaining our
ServingError and its frames. Eight refused 50 MB gRPC requests at once left a server 1.4 GB
larger until a GC pass ran (BENCHMARKS.md, issue #13). These tests run with the cyclic GC off,
so what a cycle would keep stays kept."""

from __future__ import annotations

import asyncio
import gc
import tracemalloc
import types
import weakref

import pytest
from aiohttp.test_utils import TestClient, TestServer

from serving.model_server.errors import invalid
from serving.model_server.grpc_service import _rpc
from serving.model_server.metrics import ServerMetrics
from serving.model_server.rest import RestApi


@pytest.fixture
def no_cyclic_gc():
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
        gc.collect()


class _Request:
    """Stands for a decoded PredictRequest: something a weak reference can watch."""

    def __init__(self) -> None:
        self.model_spec = types.SimpleNamespace(name="toy", signature_name="")


class _Context:
    """grpc.aio's servicer context as far as the wrapper uses it: abort raises, and the call's state
    keeps the exception it raised."""

    def __init__(self) -> None:
        self.aborted: BaseException | None = None

    async def abort(self, code, details):
        self.aborted = RuntimeError(f"{code.name}: {details}")
        raise self.aborted

    def time_remaining(self):
        return None


class _SyncContext(_Context):
    """The context of a method grpc.aio runs on its thread pool: abort is a plain call."""

    def abort(self, code, details):
        self.aborted = RuntimeError(f"{code.name}: {details}")
        raise self.aborted


def _refuse(request):
    inputs = {"x": request}  # a refusal deep in the handler, with the request in its locals
    raise invalid(f"input tensor map has {len(inputs)} bad entries")


class _Service:
    metrics = ServerMetrics()

    @_rpc("predict")
    async def Predict(self, request, context):
        _refuse(request)

    @_rpc("classify")
    def Classify(self, request, context):
        _refuse(request)


@pytest.mark.parametrize("method", ["Predict", "Classify"])
def test_a_refused_grpc_request_is_freed_once_answered(no_cyclic_gc, method):
    request = _Request()
    context = _Context() if method == "Predict" else _SyncContext()
    watch = weakref.ref(request)
    with pytest.raises(RuntimeError, match="INVALID_ARGUMENT: input tensor map has 1 bad entries"):
        answer = getattr(_Service(), method)(request, context)
        if method == "Predict":
            asyncio.run(answer)
    del request
    assert context.aborted is not None
    assert watch() is None, "the refused request is kept alive by a reference cycle"


def test_refused_rest_bodies_are_freed_once_answered(no_cyclic_gc):
    """Five 8 MB bodies that are not JSON, each answered 400: the memory they took is free again."""
    api = RestApi(manager=None, metrics=ServerMetrics(), num_threads=1)
    body = b"[" + b"x" * (8 << 20)

    async def post_five() -> list[int]:
        async with TestClient(TestServer(api.app())) as client:
            statuses = []
            for _ in range(5):
                response = await client.post("/v1/models/toy:predict", data=body)
                statuses.append(response.status)
                await response.read()
            return statuses

    tracemalloc.start()
    try:
        statuses = asyncio.run(post_five())
        held, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        api.close()
    assert statuses == [400] * 5
    # Before, each body stayed in a cycle with its handler's frame: 120 MiB held here.
    assert held < 12 << 20, f"{held >> 20} MiB still held after the answers"
