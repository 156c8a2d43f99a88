"""An asyncio gRPC load generator: N concurrent clients sending Predict back to back for D seconds.

Run as its own process so the client does not share the server's interpreter.
Prints one JSON line: requests, errors, seconds, requests/s, p50 and p99 in ms."""

from __future__ import annotations

import argparse
import asyncio
import json
import time

import grpc
import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc


async def client(stub, request, deadline, latencies, errors):
    while time.perf_counter() < deadline:
        started = time.perf_counter()
        try:
            await stub.Predict(request, timeout=30)
            latencies.append(time.perf_counter() - started)
        except grpc.aio.AioRpcError:
            errors.append(1)


async def main_async(args) -> dict:
    with open(args.image, "rb") as f:
        image = f.read()
    request = predict_pb2.PredictRequest()
    request.model_spec.name = args.model
    request.inputs["image_bytes"].CopyFrom(tf.make_tensor_proto(np.array([image], dtype=object)))
    async with grpc.aio.insecure_channel(args.target) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        await stub.Predict(request, timeout=60)  # connect and warm up
        latencies, errors = [], []
        started = time.perf_counter()
        deadline = started + args.seconds
        await asyncio.gather(*(client(stub, request, deadline, latencies, errors) for _ in range(args.clients)))
        seconds = time.perf_counter() - started
    ms = np.array(latencies) * 1000
    return {
        "requests": len(latencies),
        "errors": len(errors),
        "seconds": seconds,
        "rps": len(latencies) / seconds,
        "p50_ms": float(np.percentile(ms, 50)) if len(ms) else None,
        "p99_ms": float(np.percentile(ms, 99)) if len(ms) else None,
    }


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--target", required=True)
    p.add_argument("--model", default="captcha")
    p.add_argument("--image", required=True)
    p.add_argument("--clients", type=int, default=1)
    p.add_argument("--seconds", type=float, default=10)
    print(json.dumps(asyncio.run(main_async(p.parse_args()))))
