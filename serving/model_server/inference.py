"""Predict, Classify, Regress, MultiInference and metadata over loaded servables.

The protocol layers (rest.py, grpc_service.py) translate their wire format to
these calls; everything about signatures, methods and tensors lives here."""

from __future__ import annotations

import concurrent.futures
import dataclasses
import functools
import os
from collections.abc import Callable

import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import (
    classification_pb2,
    inference_pb2,
    input_pb2,
    prediction_log_pb2,
    regression_pb2,
)

from serving.layout import CLASSIFY_METHOD, REGRESS_METHOD, WARMUP_PATH
from serving.model_server.config import BatchingParameters
from serving.model_server.errors import invalid
from serving.model_server.manager import ModelManager
from serving.model_server.servable import Servable, Signature

MAX_WARMUP_RECORDS = 1000


@dataclasses.dataclass(frozen=True)
class Target:
    """What a request addresses: ModelSpec in both APIs."""

    model: str
    version: int | None = None
    label: str | None = None
    signature: str = ""


@dataclasses.dataclass
class Answer:
    version: int
    signature: str
    outputs: dict


# --- predict ---------------------------------------------------------------------------------
def prepare_predict(
    servable: Servable, signature_name: str, inputs: dict[str, np.ndarray], output_filter=()
) -> tuple[Signature, dict[str, np.ndarray], list[str]]:
    """The signature, the checked inputs and the outputs asked for (all when the filter is empty)."""
    signature = servable.signature(signature_name)
    wanted = list(output_filter)
    unknown = [k for k in wanted if k not in signature.output_specs]
    if unknown:
        raise invalid(
            f"output tensor alias(es) {unknown} not found in signature {signature.name!r}; "
            f"it has {sorted(signature.output_specs)}"
        )
    return signature, signature.check_inputs(inputs), wanted


def run_predict(
    servable: Servable, signature_name: str, inputs: dict[str, np.ndarray], output_filter=()
) -> tuple[Signature, dict[str, np.ndarray]]:
    signature, checked, wanted = prepare_predict(servable, signature_name, inputs, output_filter)
    outputs = servable.run(signature, checked)
    if wanted:
        outputs = {k: outputs[k] for k in wanted}
    return signature, outputs


# --- classify and regress (serialized tf.Example in) -----------------------------------------
def serialized_examples(request_input: input_pb2.Input) -> np.ndarray:
    kind = request_input.WhichOneof("kind")
    if kind == "example_list":
        examples = [e.SerializeToString() for e in request_input.example_list.examples]
    elif kind == "example_list_with_context":
        context = request_input.example_list_with_context.context
        examples = []
        for example in request_input.example_list_with_context.examples:
            merged = tf.train.Example()
            merged.CopyFrom(context)
            merged.MergeFrom(example)
            examples.append(merged.SerializeToString())
    else:
        raise invalid("Input is empty")
    if not examples:
        raise invalid("Input is empty")
    return np.array(examples, dtype=object)


def _method_signature(servable: Servable, name: str, method: str, what: str) -> Signature:
    signature = servable.signature(name)
    if signature.method_name != method:
        raise invalid(f"Expected {what} signature method_name to be {method}. Was: {signature.method_name}")
    if len(signature.input_specs) != 1:
        raise invalid(f"Expected one input Tensor in signature {signature.name!r}")
    return signature


def run_classify(servable: Servable, signature_name: str, request_input: input_pb2.Input):
    signature = _method_signature(servable, signature_name, CLASSIFY_METHOD, "classification")
    examples = serialized_examples(request_input)
    (key,) = signature.input_specs
    outputs = servable.run(signature, {key: examples})
    classes, scores = outputs.get("classes"), outputs.get("scores")
    if classes is None and scores is None:
        raise invalid(f"signature {signature.name!r} has neither 'classes' nor 'scores' outputs")
    n = len(examples)
    classes = None if classes is None else classes.reshape(n, -1)
    scores = None if scores is None else scores.reshape(n, -1).astype(float)
    result = classification_pb2.ClassificationResult()
    for i in range(n):
        row = result.classifications.add()
        first = classes if classes is not None else scores
        assert first is not None  # one of them, checked above
        width = first.shape[1]
        for j in range(width):
            item = row.classes.add()
            if classes is not None:
                label = classes[i, j]
                item.label = label.decode("utf-8", "replace") if isinstance(label, bytes) else str(label)
            if scores is not None:
                item.score = scores[i, j]
    return signature, result


def run_regress(servable: Servable, signature_name: str, request_input: input_pb2.Input):
    signature = _method_signature(servable, signature_name, REGRESS_METHOD, "regression")
    examples = serialized_examples(request_input)
    (key,) = signature.input_specs
    outputs = servable.run(signature, {key: examples})
    if "outputs" not in outputs:
        raise invalid(f"signature {signature.name!r} has no 'outputs' output")
    values = outputs["outputs"].reshape(len(examples), -1)
    if values.shape[1] != 1:
        raise invalid(
            f"Expected output Tensor shape to be [batch_size] or [batch_size, 1], got {list(outputs['outputs'].shape)}"
        )
    result = regression_pb2.RegressionResult()
    for value in values[:, 0]:
        result.regressions.add(value=float(value))
    return signature, result


def classify(manager: ModelManager, target: Target, request_input: input_pb2.Input) -> Answer:
    with manager.lease(target.model, target.version, target.label) as servable:
        signature, result = run_classify(servable, target.signature, request_input)
        return Answer(servable.version, signature.name, result)


def regress(manager: ModelManager, target: Target, request_input: input_pb2.Input) -> Answer:
    with manager.lease(target.model, target.version, target.label) as servable:
        signature, result = run_regress(servable, target.signature, request_input)
        return Answer(servable.version, signature.name, result)


def run_multi_inference(servable: Servable, request: inference_pb2.MultiInferenceRequest):
    if not request.tasks:
        raise invalid("Tasks is empty")
    response = inference_pb2.MultiInferenceResponse()
    seen = set()
    for task in request.tasks:
        spec = task.model_spec
        if spec.name != servable.name:
            raise invalid("All ModelSpecs in a MultiInferenceRequest must access the same model name.")
        if spec.signature_name in seen:
            raise invalid("Duplicate evaluation of signature: " + spec.signature_name)
        seen.add(spec.signature_name)
        out = response.results.add()
        if task.method_name == CLASSIFY_METHOD:
            signature, result = run_classify(servable, spec.signature_name, request.input)
            out.classification_result.CopyFrom(result)
        elif task.method_name == REGRESS_METHOD:
            signature, result = run_regress(servable, spec.signature_name, request.input)
            out.regression_result.CopyFrom(result)
        else:
            raise invalid(f"Unsupported signature method_name: {task.method_name}")
        out.model_spec.name = servable.name
        out.model_spec.version.value = servable.version
        out.model_spec.signature_name = signature.name
    return response


def multi_inference(manager: ModelManager, request: inference_pb2.MultiInferenceRequest):
    if not request.tasks:
        raise invalid("Tasks is empty")
    spec = request.tasks[0].model_spec
    version = spec.version.value if spec.HasField("version") else None
    with manager.lease(spec.name, version, spec.version_label or None) as servable:
        return run_multi_inference(servable, request)


# --- metadata --------------------------------------------------------------------------------
def metadata(manager: ModelManager, target: Target):
    with manager.lease(target.model, target.version, target.label) as servable:
        return servable.version, servable.signature_defs


# --- warmup ----------------------------------------------------------------------------------
def _at_once(count: int, call: Callable[[], object]) -> None:
    """`call()` in `count` threads at the same time; the first failure is raised."""
    if count <= 1:
        call()
        return
    with concurrent.futures.ThreadPoolExecutor(count) as pool:
        for done in [pool.submit(call) for _ in range(count)]:
            done.result()


def warm_up(servable: Servable, batching: BatchingParameters | None = None) -> int:
    """Replays assets.extra/tf_serving_warmup_requests (PredictionLog records), as TF Serving does
    before a version takes traffic. Returns the number of records; a failing record fails the load.

    With `batching`, the first predict record of each batchable signature is also run with its rows
    repeated to max_batch_size, on as many threads at the same time as such batches may run together
    (num_batch_threads, but no more than max_enqueued_batches, or the scheduler's queue could refuse
    one and fail the load): the memory of the largest batches (TensorFlow's buffers for them, which
    the allocator then keeps) is taken at load, not by the first busy second under traffic, where it
    showed as a step in RSS and a slow minute in p99. One such batch at a time was not enough: a 3 s
    stall under load, whose backlog then ran as largest batches on both batch threads, still stepped
    RSS up by ~100 MiB (BENCHMARKS.md, soak)."""
    batch_size = batching.max_batch_size if batching else 0
    at_once = min(batching.num_batch_threads, batching.max_enqueued_batches) if batching else 1
    path = os.path.join(servable.path, WARMUP_PATH)
    if not os.path.exists(path):
        return 0
    count = 0
    widened: set[str] = set()
    for record in tf.data.TFRecordDataset(path):
        count += 1
        if count > MAX_WARMUP_RECORDS:
            raise invalid(f"{path}: more than {MAX_WARMUP_RECORDS} warmup records")
        log = prediction_log_pb2.PredictionLog.FromString(record.numpy())
        kind = log.WhichOneof("log_type")
        if kind == "predict_log":
            request = log.predict_log.request
            inputs = {k: tf.make_ndarray(v) for k, v in request.inputs.items()}
            signature, _ = run_predict(servable, request.model_spec.signature_name, inputs, request.output_filter)
            if batch_size and signature.batchable and signature.name not in widened:
                rows = {v.shape[0] if v.ndim else 0 for v in inputs.values()}
                if len(rows) == 1 and 0 < (n := rows.pop()) < batch_size:
                    repeated = {k: v[np.arange(batch_size) % n] for k, v in inputs.items()}
                    _at_once(
                        at_once,
                        functools.partial(run_predict, servable, signature.name, repeated, request.output_filter),
                    )
                widened.add(signature.name)
        elif kind == "classify_log":
            request = log.classify_log.request
            run_classify(servable, request.model_spec.signature_name, request.input)
        elif kind == "regress_log":
            request = log.regress_log.request
            run_regress(servable, request.model_spec.signature_name, request.input)
        elif kind == "multi_inference_log":
            run_multi_inference(servable, log.multi_inference_log.request)
        else:
            raise invalid(f"{path}: unsupported warmup record type {kind}")
    return count
