"""Property-based tests (Hypothesis) for the parsers that take outside input: the REST JSON codec, the
gRPC tensor codec, the frontend's upload parsing and batch validation's CSV pre-check.

Each property is "any input either works or is refused with the module's own error", never another
exception; each test is bounded in examples and time so the suite stays fast and deterministic
(derandomized: the same examples every run, a failure reproduces).
"""

from __future__ import annotations

import base64
import json

import grpc
import numpy as np
import tensorflow as tf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tensorflow.core.framework import tensor_pb2, types_pb2
from tensorflow_metadata.proto.v0 import schema_pb2

from pipelines.validate import check_csv
from pipelines.validate_checks import UnusableInput
from serving.frontend.images import BadImage, check_image, decode_base64
from serving.model_server import json_codec, tensors
from serving.model_server.errors import ServingError

BOUNDED = settings(
    max_examples=150,
    deadline=2000,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True)
    | st.text(max_size=20)
    | st.builds(lambda b: {"b64": base64.b64encode(b).decode()}, st.binary(max_size=16)),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=40,
)
bodies = st.dictionaries(
    st.sampled_from(["instances", "inputs", "signature_name", "examples", "context", "x"]), json_values, max_size=3
)


class _Signature:
    """What predict_inputs reads of a servable's signature."""

    def __init__(self, specs: dict[str, tf.TensorSpec]) -> None:
        self.name = "serving_default"
        self.input_specs = specs


SIGNATURES = [
    _Signature({"x": tf.TensorSpec([None], tf.float32)}),
    _Signature({"image_bytes": tf.TensorSpec([None], tf.string)}),
    _Signature({"a": tf.TensorSpec([None, 2], tf.int64), "b": tf.TensorSpec([None], tf.bool)}),
]


@BOUNDED
@given(body=bodies, which=st.integers(0, len(SIGNATURES) - 1))
def test_rest_predict_bodies_parse_or_are_invalid_argument(body, which):
    raw = json.dumps(body).encode()  # NaN, Infinity and 65-bit integers too: TF Serving's parser reads them
    try:
        parsed = json_codec.parse_body(raw)
        inputs, form = json_codec.predict_inputs(parsed, SIGNATURES[which])
    except ServingError as e:
        assert e.code == grpc.StatusCode.INVALID_ARGUMENT and e.message
        return
    assert form in ("row", "columnar")
    assert set(inputs) <= set(SIGNATURES[which].input_specs)
    assert all(isinstance(v, np.ndarray) for v in inputs.values())


@BOUNDED
@given(raw=st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
def test_any_bytes_as_a_rest_body_parse_or_are_invalid_argument(raw):
    try:
        body = json_codec.parse_body(raw)
        json_codec.examples_input(body)
    except ServingError as e:
        assert e.code == grpc.StatusCode.INVALID_ARGUMENT


@BOUNDED
@given(examples=st.lists(json_values, max_size=4), context=st.none() | json_values)
def test_classify_bodies_become_examples_or_are_invalid_argument(examples, context):
    body = {"examples": examples} if context is None else {"examples": examples, "context": context}
    try:
        request_input = json_codec.examples_input(body)
    except ServingError as e:
        assert e.code == grpc.StatusCode.INVALID_ARGUMENT
        return
    assert request_input.ByteSize() >= 0


dtypes = st.sampled_from(
    [
        types_pb2.DT_FLOAT,
        types_pb2.DT_DOUBLE,
        types_pb2.DT_INT32,
        types_pb2.DT_INT64,
        types_pb2.DT_STRING,
        types_pb2.DT_BOOL,
        types_pb2.DT_UINT8,
        types_pb2.DT_HALF,
        types_pb2.DT_COMPLEX64,
        types_pb2.DT_INVALID,
    ]
)


@st.composite
def tensor_protos(draw):
    proto = tensor_pb2.TensorProto(dtype=draw(dtypes))
    if draw(st.booleans()):
        proto.tensor_shape.unknown_rank = True
    for size in draw(st.lists(st.integers(-3, 1 << 40) | st.integers(0, 4), max_size=5)):
        proto.tensor_shape.dim.add().size = size
    proto.tensor_content = draw(st.binary(max_size=64))
    proto.float_val.extend(draw(st.lists(st.floats(width=32), max_size=6)))
    proto.int_val.extend(draw(st.lists(st.integers(-(1 << 31), (1 << 31) - 1), max_size=6)))
    proto.string_val.extend(draw(st.lists(st.binary(max_size=8), max_size=6)))
    return proto


@BOUNDED
@given(proto=tensor_protos())
def test_any_tensor_proto_reads_or_is_refused_without_allocating_what_it_claims(proto):
    try:
        array = tensors.to_ndarray(proto)
    except ServingError as e:
        assert e.code == grpc.StatusCode.INVALID_ARGUMENT
        return
    except (TypeError, ValueError):
        return  # TensorFlow's own refusal, which the gRPC handler turns into INVALID_ARGUMENT
    assert array.nbytes <= tensors.MAX_FILL_BYTES + 64 * 16


@BOUNDED
@given(raw=st.binary(max_size=300))
def test_tensor_proto_wire_bytes_decode_or_fail_with_decode_error(raw):
    try:
        proto = tensor_pb2.TensorProto.FromString(raw)
    except Exception:  # noqa: BLE001 - the gRPC layer maps any decode failure to INVALID_ARGUMENT
        return
    try:
        tensors.to_ndarray(proto)
    except (ServingError, TypeError, ValueError):
        pass


@BOUNDED
@given(
    data=st.binary(max_size=400),
    prefix=st.sampled_from([b"", b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF89a", b"BM"]),
    max_pixels=st.sampled_from([1, 100, 20_000_000]),
)
def test_uploads_are_an_image_format_or_bad_image(data, prefix, max_pixels):
    try:
        fmt = check_image(prefix + data, max_bytes=1 << 20, max_pixels=max_pixels)
    except BadImage as e:
        assert str(e)
        return
    assert fmt in ("PNG", "JPEG", "GIF", "BMP")


@BOUNDED
@given(
    text=st.one_of(
        st.text(max_size=60),
        st.binary(max_size=40).map(lambda b: base64.b64encode(b).decode()),
        st.binary(max_size=40).map(lambda b: "data:image/png;base64," + base64.b64encode(b).decode()),
        st.integers(),
        st.none(),
    )
)
def test_base64_uploads_decode_or_are_bad_image(text):
    try:
        assert isinstance(decode_base64(text), bytes)
    except BadImage as e:
        assert str(e)


def _schema(names: list[str]) -> schema_pb2.Schema:
    schema = schema_pb2.Schema()
    for name in names:
        schema.feature.add(name=name, type=schema_pb2.FLOAT)
    return schema


@settings(
    max_examples=120, deadline=2000, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    content=st.binary(max_size=300)
    | st.lists(
        st.lists(st.text(alphabet='ab1.,"\r\n\x00 é', max_size=6), min_size=1, max_size=4).map(",".join), max_size=6
    ).map(lambda rows: "\n".join(rows).encode())
)
def test_csv_precheck_gives_a_layout_or_one_clear_line(tmp_path, content):
    path = tmp_path / "data.csv"
    path.write_bytes(content)
    try:
        layout = check_csv(str(path), _schema(["a", "b", "c"]))
    except UnusableInput as e:
        assert str(e).startswith(str(path)) and "\n" not in str(e)
        return
    assert layout.rows >= 1 and len(layout.column_names) >= 1
