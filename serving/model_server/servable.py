"""One loaded model version: its signatures, their input and output specs, and calling them.

This is the model layer; it knows nothing about HTTP or gRPC."""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import re
import threading
from typing import Callable

import numpy as np
import tensorflow as tf
from tensorflow.core.protobuf import meta_graph_pb2, saved_model_pb2

from serving.layout import (  # noqa: F401 - CLASSIFY/REGRESS_METHOD: inference.py's imports
    CLASSIFY_METHOD,
    DEFAULT_SIGNATURE,
    PREDICT_METHOD,
    REGRESS_METHOD,
    SAVED_MODEL_FILES,
    SERVE_TAG,
)
from serving.model_server.eager_tensors import SignatureCall
from serving.model_server.errors import ServingError, invalid


def saved_model_file(version_dir: str) -> str | None:
    for name in SAVED_MODEL_FILES:
        path = os.path.join(version_dir, name)
        if os.path.isfile(path):
            return path
    return None


def read_signature_defs(version_dir: str) -> dict[str, meta_graph_pb2.SignatureDef]:
    """The SignatureDefs as written in saved_model.pb: what GetModelMetadata returns."""
    path = saved_model_file(version_dir)
    if path is None:
        raise ValueError(f"{version_dir} has no saved_model.pb")
    saved_model = saved_model_pb2.SavedModel()
    with open(path, "rb") as f:
        data = f.read()
    if path.endswith(".pbtxt"):
        from google.protobuf import text_format

        text_format.Parse(data.decode("utf-8"), saved_model)
    else:
        saved_model.ParseFromString(data)
    for meta_graph in saved_model.meta_graphs:
        if SERVE_TAG in meta_graph.meta_info_def.tags:
            return {k: v for k, v in meta_graph.signature_def.items() if not k.startswith("__")}
    raise ValueError(f"{path} has no MetaGraph tagged 'serve'")


_TF_NOISE = ("Graph execution error:", "Detected at node", "in user code:", "File ", "<stack traces unavailable>")


def tf_error_message(message: str) -> str:
    """The line of a TensorFlow error that says what is wrong: graph errors start with "Graph execution
    error:" and the Python stack of the node, and end with the op's own message (an assertion's text)."""
    for line in message.splitlines():
        text = line.strip()
        if not text or line[:1].isspace() or text.startswith(_TF_NOISE):
            continue
        text = re.sub(r"^(\{\{[^}]*\}\}\s*)+", "", text)  # "{{function_node ...}}" prefixes
        if text:
            return text
    return message.strip().splitlines()[0] if message.strip() else ""


def status_from_tf_error(error: tf.errors.OpError) -> ServingError:
    """TF's error codes are the same numbers as gRPC's."""
    import grpc

    by_value = {code.value[0]: code for code in grpc.StatusCode}
    message = tf_error_message(error.message or "") or type(error).__name__
    return ServingError(by_value.get(error.error_code, grpc.StatusCode.INTERNAL), message)


class Signature:
    """A callable signature with the specs requests are checked against."""

    def __init__(self, name: str, function, signature_def: meta_graph_pb2.SignatureDef) -> None:
        self.name = name
        self.function = function
        self.method_name = signature_def.method_name or PREDICT_METHOD
        self.input_specs: dict[str, tf.TensorSpec] = dict(function.structured_input_signature[1])
        self.output_specs: dict[str, tf.TensorSpec] = dict(function.structured_outputs)
        self._call = SignatureCall(function, self.input_specs)  # not tf.constant: TF 2.16 leaks per tensor
        # A signature can be batched across requests when every input and output has a batch dimension.
        self.batchable = all(spec.shape.rank for spec in [*self.input_specs.values(), *self.output_specs.values()])
        # Declared shapes as tuples (None: any size), checked per request without building TensorShapes.
        self._shapes = {
            k: None if s.shape.rank is None else tuple(s.shape.as_list()) for k, s in self.input_specs.items()
        }

    def check_inputs(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Names, dtypes and shapes as the signature declares them; INVALID_ARGUMENT otherwise."""
        expected, given = set(self.input_specs), set(inputs)
        if given - expected:
            raise invalid(
                f"input(s) {sorted(given - expected)} not in signature {self.name!r}; it takes {sorted(expected)}"
            )
        if expected - given:
            raise invalid(f"missing input(s) {sorted(expected - given)} for signature {self.name!r}")
        checked = {}
        for key, spec in self.input_specs.items():
            value = inputs[key]
            checked[key] = cast(value, spec.dtype, key)
            if not _shape_fits(self._shapes[key], checked[key].shape):
                raise invalid(
                    f"input {key!r} has shape {list(checked[key].shape)}; signature {self.name!r} "
                    f"expects {spec.shape.as_list() if spec.shape.rank is not None else 'any shape'}"
                )
        return checked

    def __call__(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        try:
            outputs = self._call(inputs)
        except tf.errors.OpError as e:
            raise status_from_tf_error(e) from None
        except (TypeError, ValueError) as e:
            raise invalid(f"signature {self.name!r} cannot run on these inputs: {e}") from None
        return {k: v.numpy() for k, v in outputs.items()}


def _shape_fits(declared: tuple | None, shape: tuple) -> bool:
    if declared is None:
        return True
    return len(declared) == len(shape) and all(d is None or d == n for d, n in zip(declared, shape))


def cast(value: np.ndarray, dtype: tf.DType, key: str) -> np.ndarray:
    if dtype == tf.string:
        if value.dtype.kind not in ("O", "S", "U"):
            raise invalid(f"input {key!r} must be a string (DT_STRING), got {value.dtype}")
        if value.dtype.kind == "U":
            value = np.char.encode(value, "utf-8")
        return value if value.dtype.kind == "O" else value.astype(object)
    if value.dtype.kind in ("O", "S", "U"):
        raise invalid(f"input {key!r} must be {dtype.name}, got strings")
    if dtype.is_bool:
        if value.dtype.kind != "b":
            raise invalid(f"input {key!r} must be bool, got {value.dtype}")
        return value
    if dtype.is_integer and value.dtype.kind == "f":
        if not np.all(np.isfinite(value)) or not np.all(np.equal(np.mod(value, 1), 0)):
            raise invalid(f"input {key!r} must be {dtype.name}, got non-integer numbers")
    if dtype.is_integer and value.size:
        info = np.iinfo(dtype.as_numpy_dtype)
        if value.min() < info.min or value.max() > info.max:
            raise invalid(f"input {key!r} has values outside the range of {dtype.name}")
    return value.astype(dtype.as_numpy_dtype)


class Servable:
    """A model version loaded from `<base_path>/<version>/`.

    Requests hold a lease (acquire/release); the manager unloads a version only
    once it is out of the routing table and its last lease is released."""

    def __init__(self, name: str, version: int, path: str) -> None:
        self.name = name
        self.version = version
        self.path = path
        self.signature_defs = read_signature_defs(path)
        self._loaded = tf.saved_model.load(path, tags=[SERVE_TAG])
        self.signatures = {
            key: Signature(key, function, self.signature_defs[key])
            for key, function in self._loaded.signatures.items()
            if key in self.signature_defs
        }
        self.runners: dict[str, Callable[[dict], dict]] = {k: s for k, s in self.signatures.items()}
        self._leases = 0
        self._idle = threading.Condition()

    def signature(self, name: str) -> Signature:
        key = name or DEFAULT_SIGNATURE
        if key not in self.signatures:
            raise invalid(
                f'Serving signature name: "{key}" not found in signature def; this model has {sorted(self.signatures)}'
            )
        return self.signatures[key]

    def run(self, signature: Signature, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Through the signature's batch scheduler when batching is on."""
        return self.runners[signature.name](inputs)

    async def run_async(
        self, signature: Signature, inputs: dict[str, np.ndarray], pool: concurrent.futures.Executor
    ) -> dict[str, np.ndarray]:
        """`run` for a caller on an event loop: awaits the batch scheduler when the signature is
        batched (no thread per waiting request), and runs the model on `pool` when it is not."""
        runner = self.runners[signature.name]
        if hasattr(runner, "submit_async"):
            return await runner.submit_async(inputs)
        return await asyncio.get_running_loop().run_in_executor(pool, runner, inputs)

    def acquire(self) -> None:
        with self._idle:
            self._leases += 1

    def release(self) -> None:
        with self._idle:
            self._leases -= 1
            if self._leases == 0:
                self._idle.notify_all()

    def wait_idle(self, timeout: float | None = None) -> bool:
        with self._idle:
            return self._idle.wait_for(lambda: self._leases == 0, timeout)

    def close(self) -> None:
        for runner in self.runners.values():
            close = getattr(runner, "close", None)
            if close:
                close()
        self.runners = {}
        self._loaded = None
