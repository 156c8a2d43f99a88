"""An open-loop load generator: requests leave at a fixed rate whether or not earlier ones were
answered (as real traffic does), each with a deadline; run as its own process.

python -m bench.open_loop --protocol grpc|rest --target HOST:PORT --image FILE --rate R --seconds S
    [--deadline-ms D] [--retries N] [--max-in-flight M]

Prints one JSON line: offered and sent requests, answers by outcome (ok, shed: UNAVAILABLE / 503,
deadline: DEADLINE_EXCEEDED / 504 / client timeout, other), the p50/p99 of answered requests in ms,
and the same per second of the run ("seconds": [...]) so recovery after overload can be read off.
"client_lag_ms" is this generator's own event-loop lag (p50, p99, max of samples every 10 ms): when
it is large, the generator itself was short of CPU, and latencies and deadlines count its delay too.
With --retries, a request that fails is sent again (to a fresh connection for REST), and "lost"
counts those that failed every time.
"""

from __future__ import annotations

import argparse
import array
import asyncio
import base64
import json
import time

import numpy as np


class Tally:
    """Counts and latencies kept in flat arrays, not per-request Python objects: a long run (a soak sends
    hundreds of thousands) must not slow its own event loop with garbage-collector work that would show
    up as server latency."""

    def __init__(self, started: float) -> None:
        self.started = started
        self.outcomes: dict[str, int] = {}
        self.seconds = array.array("i")  # second of the run of each answered request
        self.ms = array.array("d")  # its latency
        self.per_second: dict[int, dict[str, int]] = {}
        self.lost = 0

    def add(self, outcome: str, sent_at: float, ms: float | None) -> None:
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1
        second = int(sent_at - self.started)
        bucket = self.per_second.setdefault(second, {})
        bucket[outcome] = bucket.get(outcome, 0) + 1
        if outcome == "ok" and ms is not None:
            self.seconds.append(second)
            self.ms.append(ms)


def _grpc_outcome(code) -> str:
    import grpc

    return {
        grpc.StatusCode.UNAVAILABLE: "shed",
        grpc.StatusCode.RESOURCE_EXHAUSTED: "shed",
        grpc.StatusCode.DEADLINE_EXCEEDED: "deadline",
        # This client never cancels a call: CANCELLED is gRPC's core refusing it at the door (more calls
        # waiting for the server's loop than --grpc_max_pending allows; grpcio 1.85 answers so).
        grpc.StatusCode.CANCELLED: "shed",
    }.get(code, f"other:{code.name}")


def _rest_outcome(status: int) -> str:
    return {503: "shed", 429: "shed", 504: "deadline", 408: "deadline"}.get(status, f"other:{status}")


async def run(args) -> dict:
    with open(args.image, "rb") as f:
        image = f.read()
    deadline_s = args.deadline_ms / 1000
    started = time.perf_counter()
    tally = Tally(started)
    in_flight = asyncio.Semaphore(args.max_in_flight)

    if args.protocol == "grpc":
        import grpc
        import tensorflow as tf
        from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

        request = predict_pb2.PredictRequest()
        request.model_spec.name = args.model
        request.inputs["image_bytes"].CopyFrom(tf.make_tensor_proto(np.array([image], dtype=object)))
        channels = [
            grpc.aio.insecure_channel(args.target, options=[("grpc.use_local_subchannel_pool", 1)])
            for _ in range(args.channels)
        ]
        await prediction_service_pb2_grpc.PredictionServiceStub(channels[0]).Predict(request, timeout=60)
        # The request serialized once and the answer left as bytes: protobuf work per request would be
        # the generator's CPU, taken from the server it shares cores with.
        message = request.SerializeToString()
        predicts = [c.unary_unary("/tensorflow.serving.PredictionService/Predict") for c in channels]

        async def once(i: int) -> str:
            try:
                await predicts[i % len(predicts)](message, timeout=deadline_s)
                return "ok"
            except grpc.aio.AioRpcError as e:
                return _grpc_outcome(e.code())
    else:
        from bench.http1 import Http1Pool

        body = json.dumps(
            {"signature_name": "serving_default", "instances": [{"b64": base64.b64encode(image).decode()}]}
        ).encode()
        host, _, port = args.target.rpartition(":")
        # With retries, every attempt on a fresh connection (a retry must not reuse one to a dead replica).
        pool = Http1Pool(host, int(port), f"/v1/models/{args.model}:predict", body, keep_alive=args.retries == 0)

        async def once(i: int) -> str:
            try:
                status = await pool.request(deadline_s)
                return "ok" if status == 200 else _rest_outcome(status)
            except TimeoutError:
                return "deadline"
            except OSError as e:
                return f"other:{type(e).__name__}"

    async def send(i: int, sent_at: float) -> None:
        async with in_flight:
            for attempt in range(args.retries + 1):
                t0 = time.perf_counter()
                outcome = await once(i)
                if outcome == "ok" or attempt == args.retries:
                    break
                tally.add(f"retried:{outcome}", sent_at, None)
            tally.add(outcome, sent_at, (time.perf_counter() - t0) * 1000)
            if outcome != "ok" and args.retries:
                tally.lost += 1

    lags = array.array("d")

    async def watch_lag() -> None:
        while True:
            before = time.perf_counter()
            await asyncio.sleep(0.01)
            lags.append(max(0.0, time.perf_counter() - before - 0.01) * 1000)

    watcher = asyncio.ensure_future(watch_lag())
    total = int(args.rate * args.seconds)
    started = time.perf_counter()
    tally.started = started
    pending: set = set()
    for i in range(total):
        target_time = started + i / args.rate
        delay = target_time - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.ensure_future(send(i, time.perf_counter()))
        pending.add(task)
        task.add_done_callback(pending.discard)  # finished requests are not kept
    sending_s = time.perf_counter() - started
    await asyncio.gather(*list(pending))
    watcher.cancel()
    if args.protocol == "grpc":
        for channel in channels:
            await channel.close()
    else:
        pool.close()
    ms = np.frombuffer(tally.ms, dtype=np.float64) if len(tally.ms) else np.array([])
    at = np.frombuffer(tally.seconds, dtype=np.int32) if len(tally.seconds) else np.array([], dtype=np.int32)

    lag_ms = np.array(lags, dtype=np.float64)

    def pct(values, q):
        return float(np.percentile(values, q)) if len(values) else None

    seconds = []
    for second in sorted(tally.per_second):
        answered = ms[at == second]
        seconds.append(
            {"second": second, **tally.per_second[second], "p50_ms": pct(answered, 50), "p99_ms": pct(answered, 99)}
        )
    return {
        "protocol": args.protocol,
        "offered_rps": args.rate,
        "sent": total,
        "sent_rps": total / sending_s,
        "outcomes": tally.outcomes,
        "lost": tally.lost,
        "p50_ms": pct(ms, 50),
        "p99_ms": pct(ms, 99),
        "client_lag_ms": {"p50": pct(lag_ms, 50), "p99": pct(lag_ms, 99), "max": max(lags, default=None)},
        "seconds": seconds,
    }


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--protocol", choices=("grpc", "rest"), required=True)
    p.add_argument("--target", required=True)
    p.add_argument("--model", default="captcha")
    p.add_argument("--image", required=True)
    p.add_argument("--rate", type=float, required=True)
    p.add_argument("--seconds", type=float, required=True)
    p.add_argument("--deadline-ms", type=float, default=1000)
    p.add_argument("--retries", type=int, default=0)
    p.add_argument("--channels", type=int, default=4, help="gRPC connections (spread over replicas)")
    p.add_argument("--max-in-flight", type=int, default=4000)
    print(json.dumps(asyncio.run(run(p.parse_args()))))


if __name__ == "__main__":
    main()
