"""TF Serving's REST JSON: request bodies to tensors and tf.Examples, tensors back to JSON.

Rules from the TF Serving REST API guide: row ("instances") and columnar
("inputs") formats, {"b64": ...} for binary strings, outputs whose name ends
in "_bytes" returned as {"b64": ...}, "predictions" / "outputs" keys."""

from __future__ import annotations

import base64
import binascii
import json
import math

import numpy as np
import orjson
import tensorflow as tf
from tensorflow_serving.apis import input_pb2

from serving.model_server.errors import invalid
from serving.model_server.servable import Signature

# Deeper JSON than any tensor needs (TensorFlow's rank limit is 254; real requests nest a few levels).
# Checked while shapes are read, so a hostile body costs no more than its own size to refuse.
MAX_NESTING = 64
TOO_DEEP = f"JSON Parse error: the body nests deeper than {MAX_NESTING} levels"


def is_b64(value) -> bool:
    return isinstance(value, dict) and len(value) == 1 and "b64" in value


def decode_b64(value: dict) -> bytes:
    if not isinstance(value["b64"], str):
        raise invalid("'b64' must hold a base64 string")
    try:
        return base64.b64decode(value["b64"], validate=True)
    except (binascii.Error, ValueError):
        raise invalid("Unable to base64 decode the 'b64' value") from None


def parse_body(body: bytes) -> dict:
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        # What orjson refuses but TF Serving reads: NaN / Infinity literals, integers past 64 bits,
        # UTF-16/32 bodies; the standard library parses those, or says what is wrong.
        try:
            parsed = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise invalid(f"JSON Parse error: {e}") from None
        except RecursionError:  # orjson stops at 1024 levels, the standard library at Python's stack
            raise invalid(TOO_DEEP) from None
    if not isinstance(parsed, dict):
        raise invalid("JSON Value: the request body must be a JSON object")
    return parsed


def _utf8(text: str, where: str) -> bytes:
    """JSON may escape lone UTF-16 surrogates ("\\ud800"), which are no text at all."""
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        raise invalid(f"{where}: a string is not valid Unicode (an unpaired surrogate escape)") from None


def signature_name(body: dict) -> str:
    """The request's "signature_name" ("" for the default), checked: it names metrics and errors."""
    name = body.get("signature_name", "")
    if not isinstance(name, str):
        raise invalid("'signature_name' must be a string")
    _utf8(name, "'signature_name'")
    return name


def _preview(value, limit: int) -> str:
    """The start of a value as JSON, for messages; never fails on a deep or odd value."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")  # orjson writes null
    try:
        return orjson.dumps(value)[:limit].decode("utf-8", "replace")
    except (orjson.JSONEncodeError, TypeError):
        return f"<{type(value).__name__}>"


def _shape(value, key: str, depth: int = 0) -> list[int]:
    """The shape of a nested list; ragged lists are refused (a tensor is rectangular)."""
    if isinstance(value, list):
        if depth >= MAX_NESTING:
            raise invalid(TOO_DEEP)
        if not value:
            return [0]
        shapes = [_shape(v, key, depth + 1) for v in value]
        if any(s != shapes[0] for s in shapes):
            raise invalid(
                f"input {key!r}: expected all lists at the same depth to have the same length (ragged tensor)"
            )
        return [len(value), *shapes[0]]
    if isinstance(value, dict) and not is_b64(value):
        raise invalid(f"input {key!r}: unexpected JSON object {_preview(value, 60)}")
    return []


def _strings(value, key: str):
    if isinstance(value, list):
        return [_strings(v, key) for v in value]
    if is_b64(value):
        return decode_b64(value)
    if isinstance(value, str):
        return _utf8(value, f"input {key!r}")
    raise invalid(f"input {key!r} must be strings (DT_STRING), got {_preview(value, 40)}")


def _check_scalars(value, key: str) -> None:
    if isinstance(value, list):
        for v in value:
            _check_scalars(v, key)
    elif isinstance(value, str) or is_b64(value) or value is None:
        raise invalid(f"input {key!r} must be numbers, got {_preview(value, 40)}")


def _flatten(value, into: list) -> list:
    if isinstance(value, list):
        for v in value:
            _flatten(v, into)
    else:
        into.append(value)
    return into


def to_array(value, spec: tf.TensorSpec, key: str) -> np.ndarray:
    shape = _shape(value, key)
    if spec.dtype == tf.string:
        flat = _flatten(_strings(value, key), [])
        out = np.empty(len(flat), dtype=object)
        out[:] = flat
        return out.reshape(shape)
    _check_scalars(value, key)
    array = np.array(value, dtype=np.float64 if spec.dtype.is_floating else None)
    if spec.dtype.is_bool:
        if array.dtype.kind != "b":
            raise invalid(f"input {key!r} must be true/false")
        return array
    if array.dtype.kind not in "iuf" or array.dtype.kind == "b":
        raise invalid(f"input {key!r} must be numbers")
    return array


def predict_inputs(body: dict, signature: Signature) -> tuple[dict[str, np.ndarray], str]:
    """The request's tensors by input name, and its format ("row" or "columnar")."""
    has_instances, has_inputs = "instances" in body, "inputs" in body
    if has_instances == has_inputs:
        raise invalid(
            "Missing 'inputs' or 'instances' key"
            if not has_instances
            else "Not both of 'inputs' and 'instances' can be specified"
        )
    specs = signature.input_specs
    if has_instances:
        instances = body["instances"]
        if not isinstance(instances, list):
            raise invalid("'instances' must be a JSON list")
        if not instances:
            raise invalid("'instances' is empty")
        named = isinstance(instances[0], dict) and not is_b64(instances[0])
        if not named:
            if len(specs) != 1:
                raise invalid(
                    f"signature {signature.name!r} takes {len(specs)} inputs {sorted(specs)}: "
                    "each instance must be a JSON object naming them"
                )
            (key,) = specs
            return {key: to_array(instances, specs[key], key)}, "row"
        keys = set(instances[0])
        for instance in instances:
            if not isinstance(instance, dict) or is_b64(instance) or set(instance) != keys:
                raise invalid("every instance must be a JSON object with the same keys")
        unknown = keys - set(specs)
        if unknown:
            raise invalid(f"input(s) {sorted(unknown)} not in signature {signature.name!r}; it takes {sorted(specs)}")
        return {k: to_array([inst[k] for inst in instances], specs[k], k) for k in keys}, "row"
    inputs = body["inputs"]
    if isinstance(inputs, dict) and not is_b64(inputs):
        if not inputs:
            raise invalid("'inputs' is empty")
        unknown = set(inputs) - set(specs)
        if unknown:
            raise invalid(f"input(s) {sorted(unknown)} not in signature {signature.name!r}; it takes {sorted(specs)}")
        return {k: to_array(v, specs[k], k) for k, v in inputs.items()}, "columnar"
    if len(specs) != 1:
        raise invalid(f"signature {signature.name!r} takes {len(specs)} inputs: 'inputs' must be an object naming them")
    (key,) = specs
    if inputs == []:
        raise invalid("'inputs' is empty")
    return {key: to_array(inputs, specs[key], key)}, "columnar"


def _jsonable(value, as_b64: bool):
    if isinstance(value, list):
        return [_jsonable(v, as_b64) for v in value]
    if isinstance(value, bytes):
        if as_b64:
            return {"b64": base64.b64encode(value).decode("ascii")}
        return value.decode("utf-8", "replace")
    return value


def tensor_to_json(name: str, array: np.ndarray):
    value = array.tolist()
    if array.dtype.kind in ("O", "S"):
        return _jsonable(value, name.endswith("_bytes"))
    return value


def predict_response(outputs: dict[str, np.ndarray], form: str) -> dict:
    if form == "columnar":
        if len(outputs) == 1:
            ((name, value),) = outputs.items()
            return {"outputs": tensor_to_json(name, value)}
        return {"outputs": {k: tensor_to_json(k, v) for k, v in outputs.items()}}
    sizes = {v.shape[0] if v.ndim else None for v in outputs.values()}
    if len(sizes) != 1 or None in sizes:
        raise invalid(
            "Tensors in the output must all have the same 0-th dimension size for the row format; "
            "use the columnar 'inputs' format"
        )
    if len(outputs) == 1:
        ((name, value),) = outputs.items()
        return {"predictions": tensor_to_json(name, value)}
    columns = {k: tensor_to_json(k, v) for k, v in outputs.items()}
    (size,) = sizes
    assert size is not None  # checked above
    return {"predictions": [{k: columns[k][i] for k in columns} for i in range(size)]}


def dumps(payload) -> bytes:
    """The response body. orjson writes NaN and infinities as null; TF Serving writes them as
    NaN / Infinity, so a payload holding any (seen only when "null" appears) takes the standard
    library's encoder, which writes them that way."""
    try:
        body = orjson.dumps(payload)
    except orjson.JSONEncodeError:  # text that is not Unicode (a client's surrogates echoed in a message)
        return json.dumps(payload).encode()
    if b"null" in body and _has_non_finite(payload):
        return json.dumps(payload).encode()
    return body


def _has_non_finite(value) -> bool:
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, dict):
        return any(_has_non_finite(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_non_finite(v) for v in value)
    return False


# --- classify / regress bodies -----------------------------------------------------------------
def _feature(value, key: str) -> tf.train.Feature:
    values = value if isinstance(value, list) else [value]
    if any(isinstance(v, (list, dict)) and not is_b64(v) for v in values) or any(isinstance(v, bool) for v in values):
        raise invalid(f'feature {key!r}: values must be numbers, strings or {{"b64": ...}}')
    if all(isinstance(v, int) for v in values) and values:
        return tf.train.Feature(int64_list=tf.train.Int64List(value=values))
    if all(isinstance(v, (int, float)) for v in values) and values:
        return tf.train.Feature(float_list=tf.train.FloatList(value=values))
    if all(isinstance(v, str) or is_b64(v) for v in values):
        return tf.train.Feature(
            bytes_list=tf.train.BytesList(
                value=[decode_b64(v) if is_b64(v) else _utf8(v, f"feature {key!r}") for v in values]
            )
        )
    raise invalid(f"feature {key!r}: all values of a feature must have one type")


def example_from_json(obj, where: str) -> tf.train.Example:
    if not isinstance(obj, dict):
        raise invalid(f"{where} must be a JSON object of feature names to values")
    return tf.train.Example(features=tf.train.Features(feature={k: _feature(v, k) for k, v in obj.items()}))


def examples_input(body: dict) -> input_pb2.Input:
    examples = body.get("examples")
    if not isinstance(examples, list) or not examples:
        raise invalid("'examples' must be a non-empty JSON list")
    request_input = input_pb2.Input()
    parsed = [example_from_json(e, "each example") for e in examples]
    if "context" in body:
        target = request_input.example_list_with_context
        target.context.CopyFrom(example_from_json(body["context"], "'context'"))
    else:
        target = request_input.example_list
    target.examples.extend(parsed)
    return request_input


def classify_response(result) -> dict:
    return {"result": [[[c.label, c.score] for c in row.classes] for row in result.classifications]}


def regress_response(result) -> dict:
    return {"result": [r.value for r in result.regressions]}
