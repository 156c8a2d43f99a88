"""The cost of gRPC itself in Python: a grpc.aio PredictionService whose Predict answers a canned
captcha PredictResponse without touching a model. The serving bench drives it with the same load
as the model server and reads its CPU time per request, the part of every Predict that no change
to this repository's code can remove. It runs on the event loop the model server picks (uvloop where
installed), so that the two are compared on the same loop.

python -m bench.grpc_floor --port PORT   (serves on 127.0.0.1 until terminated)
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

import grpc
import numpy as np
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from serving.model_server import tensors
from serving.model_server.server import new_event_loop


def canned_response() -> predict_pb2.PredictResponse:
    """The shape of the captcha model's answer: text, confidence and 4x10 probabilities."""
    response = predict_pb2.PredictResponse()
    response.model_spec.name = "captcha"
    response.model_spec.version.value = 1
    response.model_spec.signature_name = "serving_default"
    outputs = {
        "text": np.array([b"4821"], dtype=object),
        "confidence": np.array([0.98], dtype=np.float32),
        "probabilities": np.full((1, 4, 10), 0.1, dtype=np.float32),
    }
    for key, value in outputs.items():
        tensors.fill_tensor_proto(response.outputs[key], value)
    return response


class Canned(prediction_service_pb2_grpc.PredictionServiceServicer):
    def __init__(self) -> None:
        self.response = canned_response()

    async def Predict(self, request, context):
        return self.response


async def serve(port: int) -> None:
    server = grpc.aio.server()
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(Canned(), server)
    if server.add_insecure_port(f"127.0.0.1:{port}") == 0:
        raise OSError(f"cannot bind 127.0.0.1:{port}")
    await server.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print("ready", flush=True)
    await stop.wait()
    await server.stop(grace=1)


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.grpc_floor")
    p.add_argument("--port", type=int, required=True)
    port = p.parse_args(argv).port
    loop, _ = new_event_loop("auto")
    try:
        loop.run_until_complete(serve(port))
    finally:
        loop.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
