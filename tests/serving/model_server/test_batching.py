"""Dynamic batching: the scheduler on its own, then merged requests on a real server."""

from __future__ import annotations

import collections
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import grpc
import numpy as np
import pytest
import requests
import tensorflow as tf

from serving.client import GrpcClient
from serving.model_server import inference
from serving.model_server.batching import BatchScheduler
from serving.model_server.config import BatchingParameters, ConfigError, read_batching_parameters
from serving.model_server.errors import ServingError, invalid
from serving.model_server.servable import Servable
from tests.serving.toy_model import model_server, write_toy_model


class Recorder:
    """A model that doubles x, remembers each batch size and can be slow."""

    def __init__(self, delay: float = 0.0) -> None:
        self.sizes: list[int] = []
        self.delay = delay

    def __call__(self, inputs):
        self.sizes.append(len(inputs["x"]))
        time.sleep(self.delay)
        if np.any(inputs["x"] < 0):
            raise invalid("negative input")
        return {"y": inputs["x"] * 2}


def params(**kw):
    return BatchingParameters(**{"max_batch_size": 8, "batch_timeout_micros": 200_000, "num_batch_threads": 1, **kw})


def test_an_idle_model_does_not_wait_out_the_batch_timeout():
    model = Recorder()
    scheduler = BatchScheduler(model, params(batch_timeout_micros=2_000_000), "t")
    try:
        started = time.monotonic()
        scheduler.submit({"x": np.array([1.0])}).result(5)
        assert time.monotonic() - started < 0.5
    finally:
        scheduler.close()


def test_tasks_queued_while_a_batch_runs_are_merged():
    model = Recorder(delay=0.3)
    scheduler = BatchScheduler(model, params(batch_timeout_micros=100_000), "t")
    try:
        first = scheduler.submit({"x": np.array([9.0])})
        time.sleep(0.05)  # the first batch is running
        futures = [scheduler.submit({"x": np.array([float(i), float(i) + 0.5])}) for i in range(3)]
        results = [f.result(5) for f in futures]
        first.result(5)
    finally:
        scheduler.close()
    assert model.sizes == [1, 6]
    for i, result in enumerate(results):
        np.testing.assert_array_equal(result["y"], [2.0 * i, 2.0 * i + 1.0])


def test_coroutines_awaiting_one_batch_are_settled_together_on_their_loop():
    """submit_async: requests from an event loop share a batch; the batch thread hands all the
    answers to the loop in one call, each gets its own rows, and a waiter that went away
    (cancelled) neither gets an answer nor stops the others from getting theirs."""
    import asyncio

    model = Recorder(delay=0.3)
    scheduler = BatchScheduler(model, params(batch_timeout_micros=100_000), "t")

    async def scenario():
        loop = asyncio.get_running_loop()
        handed = []
        original = loop.call_soon_threadsafe
        loop.call_soon_threadsafe = lambda *a, **k: (handed.append(a[0]), original(*a, **k))[1]
        first = scheduler.submit_async({"x": np.array([9.0])})
        await asyncio.sleep(0.05)  # the first batch is running
        waiting = [scheduler.submit_async({"x": np.array([float(i)])}) for i in range(4)]
        waiting[1].cancel()  # its client went away
        results = await asyncio.gather(first, waiting[0], waiting[2], waiting[3])
        return handed, results, waiting[1]

    try:
        handed, results, gone = asyncio.run(scenario())
    finally:
        scheduler.close()
    assert model.sizes == [1, 3]  # the cancelled request is dropped from the batch, not run
    assert len(handed) == 2  # one hand-off per batch, not one per request
    assert [r["y"].tolist() for r in results] == [[18.0], [0.0], [4.0], [6.0]]
    assert gone.cancelled()


def test_an_error_reaches_every_coroutine_of_the_batch():
    import asyncio

    def broken(inputs):
        raise RuntimeError("model fell over")

    scheduler = BatchScheduler(broken, params(), "t")

    async def scenario():
        futures = [scheduler.submit_async({"x": np.array([1.0])}) for _ in range(3)]
        return await asyncio.gather(*futures, return_exceptions=True)

    try:
        outcomes = asyncio.run(asyncio.wait_for(scenario(), 5))
    finally:
        scheduler.close()
    assert [type(o) for o in outcomes] == [RuntimeError] * 3


def test_batches_are_padded_to_an_allowed_size():
    model = Recorder()
    scheduler = BatchScheduler(model, params(batch_timeout_micros=1000, allowed_batch_sizes=(4, 8)), "t")
    try:
        result = scheduler.submit({"x": np.array([1.0, 2.0, 3.0])}).result(5)
    finally:
        scheduler.close()
    assert model.sizes == [4]
    np.testing.assert_array_equal(result["y"], [2.0, 4.0, 6.0])


def test_a_task_larger_than_the_max_batch_is_refused():
    scheduler = BatchScheduler(Recorder(), params(), "t")
    try:
        with pytest.raises(ServingError) as raised:
            scheduler.submit({"x": np.zeros(9)})
    finally:
        scheduler.close()
    assert raised.value.code == grpc.StatusCode.INVALID_ARGUMENT


def test_a_full_queue_answers_unavailable_instead_of_piling_up():
    model = Recorder(delay=0.5)
    scheduler = BatchScheduler(model, params(max_batch_size=2, max_enqueued_batches=1, batch_timeout_micros=0), "t")
    try:
        first = scheduler.submit({"x": np.zeros(2)})
        time.sleep(0.1)  # the only batch thread is busy with it
        queued = scheduler.submit({"x": np.zeros(2)})
        with pytest.raises(ServingError) as raised:
            scheduler.submit({"x": np.zeros(1)})
        assert raised.value.code == grpc.StatusCode.UNAVAILABLE
        first.result(5), queued.result(5)
    finally:
        scheduler.close()


def test_requests_whose_caller_gave_up_are_dropped_not_run_and_free_the_queue():
    model = Recorder(delay=0.4)
    scheduler = BatchScheduler(model, params(max_batch_size=2, max_enqueued_batches=2, batch_timeout_micros=0), "t")
    try:
        first = scheduler.submit({"x": np.array([1.0])})
        time.sleep(0.1)  # the only batch thread is busy with it
        abandoned = [scheduler.submit({"x": np.array([5.0, 5.0])}) for _ in range(2)]  # the queue is full now
        for future in abandoned:
            assert future.cancel()  # what a passed deadline or a closed connection does
        kept = scheduler.submit({"x": np.array([3.0])})  # room again: cancelled rows do not count...
        np.testing.assert_array_equal(kept.result(5)["y"], [6.0])
        first.result(5)
        assert model.sizes == [1, 1]  # ...and never reach the model
    finally:
        scheduler.close()


def test_one_bad_request_does_not_fail_the_ones_merged_with_it():
    model = Recorder(delay=0.2)
    scheduler = BatchScheduler(model, params(), "t")
    try:
        blocker = scheduler.submit({"x": np.array([0.0])})
        time.sleep(0.05)
        good = scheduler.submit({"x": np.array([1.0])})
        bad = scheduler.submit({"x": np.array([-1.0])})
        np.testing.assert_array_equal(good.result(5)["y"], [2.0])
        with pytest.raises(ServingError):
            bad.result(5)
        blocker.result(5)
    finally:
        scheduler.close()
    assert model.sizes == [1, 2, 1, 1]  # the merged batch failed, then each task ran on its own


def test_batching_parameters_file_in_tf_serving_text_format(tmp_path):
    path = tmp_path / "batching.config"
    path.write_text(
        "max_batch_size { value: 32 }\nbatch_timeout_micros { value: 5000 }\n"
        "num_batch_threads { value: 2 }\nmax_enqueued_batches { value: 100 }\n"
        "allowed_batch_sizes: 8\nallowed_batch_sizes: 32\n"
    )
    assert read_batching_parameters(str(path)) == BatchingParameters(32, 5000, 2, 100, (8, 32))
    path.write_text("max_batch_size { value: 32 }\nallowed_batch_sizes: 16\n")
    with pytest.raises(ConfigError, match="max_batch_size"):
        read_batching_parameters(str(path))
    path.write_text("max_batch_size: 32\n")
    with pytest.raises(ConfigError, match="BatchingParameters"):
        read_batching_parameters(str(path))


def test_server_merges_concurrent_requests_into_one_model_call(toy_models, tmp_path):
    batching = tmp_path / "batching.config"
    batching.write_text(
        "max_batch_size { value: 16 }\nbatch_timeout_micros { value: 300000 }\n"
        "num_batch_threads { value: 1 }\nmax_enqueued_batches { value: 4 }\n"
    )
    server = model_server(
        "--model_config_file",
        toy_models["config"],
        "--enable_batching",
        "--batching_parameters_file",
        str(batching),
        "--monitoring_config_file",
        toy_models["monitoring"],
        log_path=str(tmp_path / "server.log"),
        poll=0,
    ).wait_ready()
    try:
        client = GrpcClient(server.grpc_target)
        barrier = threading.Barrier(8)

        def one(i):
            barrier.wait()
            return float(client.predict("toy", {"x": [float(i)]}, signature_name="slow", version=1).outputs["y"][0])

        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(one, range(8)))
        assert answers == [0.5 * i + 1.0 for i in range(8)]
        metrics = requests.get(server.rest_url + "/monitoring/prometheus/metrics", timeout=10).text
        sums = [
            ln
            for ln in metrics.splitlines()
            if ln.startswith(":tensorflow:serving:batching_session:processed_batch_size_sum{")
            and 'model_name="toy"' in ln
            and 'signature="slow"' in ln
        ]
        counts = [
            ln
            for ln in metrics.splitlines()
            if ln.startswith(":tensorflow:serving:batching_session:processed_batch_size_count{")
            and 'model_name="toy"' in ln
            and 'signature="slow"' in ln
        ]
        rows, calls = float(sums[0].rsplit(" ", 1)[1]), float(counts[0].rsplit(" ", 1)[1])
        # The first request finds the model idle and runs alone; the others queue behind it and run
        # together. On a quiet machine that is 2-3 calls; where the CPU is shared (other test workers),
        # the 8 requests reach the server spread over several of the slow signature's ~10 ms runs and
        # CI saw 4 calls (1, 2, 2 and 3 rows). What holds on any machine: fewer calls than requests.
        assert rows == 8
        assert calls < rows, metrics
    finally:
        server.stop()


def test_past_max_in_flight_requests_are_refused_at_once_on_both_protocols(tmp_path):
    """Admission: with room for one request inside the server, concurrent slow requests get 503 /
    UNAVAILABLE immediately instead of queueing; the one admitted is answered."""
    from tests.serving.toy_model import toy_server, write_toy_model

    write_toy_model(str(tmp_path / "toy"), 1)
    server = toy_server(
        str(tmp_path / "toy"),
        "--max_in_flight",
        "1",
        log_path=str(tmp_path / "server.log"),
    ).wait_ready()
    try:
        url = server.rest_url + "/v1/models/toy:predict"
        body = {"signature_name": "slow", "instances": [1.0]}
        with ThreadPoolExecutor(8) as pool:
            statuses = list(pool.map(lambda _: requests.post(url, json=body, timeout=60), range(8)))
        codes = sorted(r.status_code for r in statuses)
        assert 200 in codes and 503 in codes, codes
        assert "overloaded" in next(r for r in statuses if r.status_code == 503).json()["error"]
        client = GrpcClient(server.grpc_target)

        def grpc_call(_):
            try:
                client.predict("toy", {"x": np.array([1.0], np.float32)}, signature_name="slow")
                return "OK"
            except Exception as e:  # noqa: BLE001 - ModelServerError carries the status
                return getattr(e, "code", type(e).__name__)

        with ThreadPoolExecutor(8) as pool:
            outcomes = list(pool.map(grpc_call, range(8)))
        assert "OK" in outcomes and "UNAVAILABLE" in outcomes, outcomes
    finally:
        server.stop()


async def _burst(target: str, calls: int) -> tuple[dict[str, int], float]:
    """`calls` Predict calls sent at once on one channel: the count of each status, and the slowest
    refusal in seconds."""
    import asyncio

    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    request = predict_pb2.PredictRequest()
    request.model_spec.name = "toy"
    request.inputs["x"].CopyFrom(tf.make_tensor_proto(np.array([1.0], np.float32)))
    loop = asyncio.get_running_loop()
    async with grpc.aio.insecure_channel(target) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        await stub.Predict(request, timeout=60)  # connected, and the model warm

        async def one() -> tuple[str, float]:
            started = loop.time()
            try:
                await stub.Predict(request, timeout=60)
                return "OK", 0.0
            except grpc.aio.AioRpcError as e:
                return e.code().name, loop.time() - started

        outcomes = await asyncio.gather(*(one() for _ in range(calls)))
    counts = dict(collections.Counter(code for code, _ in outcomes))
    return counts, max((s for code, s in outcomes if code != "OK"), default=0.0)


def test_grpc_calls_past_the_pending_bound_are_refused_by_grpc_core_at_once(tmp_path):
    """--grpc_max_pending: calls that wait for the server's event loop beyond the bound are refused in
    gRPC's core (CANCELLED, grpcio 1.85) within moments, not queued until their deadline; the rest are
    answered, and the server answers normally after the burst. With the bound off (gRPC's default of
    thousands) the same burst is all answered, so the refusals are the bound's doing."""
    import asyncio

    from tests.serving.toy_model import toy_server, write_toy_model

    write_toy_model(str(tmp_path / "toy"), 1)
    for bound, log in (("1", "tight.log"), ("0", "default.log")):
        server = toy_server(
            str(tmp_path / "toy"), "--grpc_max_pending", bound, log_path=str(tmp_path / log)
        ).wait_ready()
        try:
            counts, slowest_refusal = asyncio.run(_burst(server.grpc_target, 400))
            if bound == "1":
                assert set(counts) <= {"OK", "CANCELLED"}, counts
                assert counts.get("OK", 0) > 0 and counts.get("CANCELLED", 0) > 0, counts
                assert slowest_refusal < 10, slowest_refusal
                after = GrpcClient(server.grpc_target).predict("toy", {"x": np.array([2.0], np.float32)})
                assert after.outputs["y"].tolist() == [2.0]
            else:
                assert counts == {"OK": 400}, counts
        finally:
            server.stop()


def test_batch_threads_share_the_cores_between_them(monkeypatch):
    """Without --tensorflow_intra_op_parallelism, each of the batches that run at once gets its share of
    the cores for its ops (never less than one thread), not all of them."""
    import os

    from serving.model_server.__main__ import op_threads_per_batch

    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: set(range(8)))
    assert op_threads_per_batch(params(num_batch_threads=2)) == 4
    assert op_threads_per_batch(params(num_batch_threads=3)) == 2
    assert op_threads_per_batch(params(num_batch_threads=16)) == 1


def test_warmup_with_a_batch_size_also_runs_the_largest_batch_at_once_on_each_batch_thread(tmp_path):
    """The warmup record's rows repeated to max_batch_size, once per batchable signature and on as many
    threads at the same time as batches may run at once (num_batch_threads, at most
    max_enqueued_batches), so the memory of the largest batches running together is taken at load;
    without batching the records run as written. Before, the largest batch ran once: a stall under
    traffic, whose backlog then ran as largest batches on both batch threads, stepped RSS up by ~100 MiB
    (BENCHMARKS.md, soak)."""
    path = write_toy_model(str(tmp_path / "toy"), 1)  # one warmup record: x = [1, 2] for serving_default
    widened = [1.0, 2.0, 1.0, 2.0, 1.0]
    for batching, expected in (
        (None, [[1.0, 2.0]]),
        (params(max_batch_size=5), [[1.0, 2.0], widened]),
        (params(max_batch_size=5, num_batch_threads=3), [[1.0, 2.0], *[widened] * 3]),
        (params(max_batch_size=5, num_batch_threads=4, max_enqueued_batches=2), [[1.0, 2.0], *[widened] * 2]),
    ):
        servable = Servable("toy", 1, path)
        seen = []
        signature = servable.signatures["serving_default"]
        at_once = len(expected) - 1
        together = threading.Barrier(max(at_once, 1), timeout=30)  # broken unless all run at once

        def recording(inputs, signature=signature, seen=seen, together=together):
            seen.append(inputs["x"].tolist())
            if len(seen[-1]) == 5:
                together.wait()
            return signature(inputs)

        servable.runners["serving_default"] = recording
        assert inference.warm_up(servable, batching) == 1
        assert seen == expected
        servable.close()


def test_warmup_through_the_scheduler_is_never_refused_by_its_queue(tmp_path):
    """More batch threads than queued batches: the largest batches warmed at once must all fit the
    queue, or the scheduler refuses one (UNAVAILABLE) and the version fails to load. With as many at
    once as batch threads (4 here, queue of 1), about 3 loads in 10 failed."""
    path = write_toy_model(str(tmp_path / "toy"), 1)
    batching = params(max_batch_size=5, batch_timeout_micros=0, num_batch_threads=4, max_enqueued_batches=1)
    for _ in range(10):
        servable = Servable("toy", 1, path)
        servable.runners["serving_default"] = BatchScheduler(servable.signatures["serving_default"], batching, "t")
        try:
            assert inference.warm_up(servable, batching) == 1
        finally:
            servable.close()
