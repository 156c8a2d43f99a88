"""The gRPC tensor codec agrees with TensorFlow's make_ndarray / make_tensor_proto, and writes
outputs in TF Serving's default form (typed value fields, not tensor_content)."""

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.framework import tensor_pb2, types_pb2

from serving.model_server import tensors
from serving.model_server.errors import ServingError

ARRAYS = [
    np.array([[1.5, -2.25], [3.0, 4.125]], dtype=np.float32),
    np.arange(6, dtype=np.float64).reshape(3, 2) / 7,
    np.array([1, -2, 3], dtype=np.int32),
    np.array([[1 << 40, -5]], dtype=np.int64),
    np.array([0, 200, 255], dtype=np.uint8),
    np.array([-7, 7], dtype=np.int8),
    np.array([True, False, True]),
    np.array([b"png bytes \x00\xff", b""], dtype=object),
    np.array(2.5, dtype=np.float32),  # a scalar
    np.zeros((0, 3), dtype=np.float32),  # no rows
    np.array([1.0, 2.0], dtype=np.float16),  # not in the fast table: TensorFlow's own path
    np.array([1, 2], dtype=np.uint32),
]


@pytest.mark.parametrize("array", ARRAYS, ids=lambda a: f"{a.dtype}{list(a.shape)}")
def test_reads_what_tensorflow_writes(array):
    proto = tf.make_tensor_proto(array)
    got = tensors.to_ndarray(proto)
    want = tf.make_ndarray(proto)
    assert got.dtype == want.dtype and got.shape == want.shape
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("array", ARRAYS, ids=lambda a: f"{a.dtype}{list(a.shape)}")
def test_writes_what_tensorflow_reads(array):
    proto = tensor_pb2.TensorProto()
    tensors.fill_tensor_proto(proto, array)
    back = tf.make_ndarray(proto)
    assert back.shape == array.shape
    np.testing.assert_array_equal(back, array)


def test_outputs_use_typed_fields_as_tf_serving_does():
    proto = tensor_pb2.TensorProto()
    tensors.fill_tensor_proto(proto, np.array([[0.25, 0.5]], dtype=np.float32))
    assert proto.dtype == types_pb2.DT_FLOAT and not proto.tensor_content
    assert list(proto.float_val) == [0.25, 0.5]
    assert [d.size for d in proto.tensor_shape.dim] == [1, 2]
    text = tensor_pb2.TensorProto()
    tensors.fill_tensor_proto(text, np.array(["4821", b"0007"], dtype=object))
    assert text.dtype == types_pb2.DT_STRING and list(text.string_val) == [b"4821", b"0007"]


def test_reads_value_fields_and_tensor_content():
    by_field = tensor_pb2.TensorProto(dtype=types_pb2.DT_FLOAT, float_val=[1.0, 2.0, 3.0, 4.0])
    by_field.tensor_shape.dim.add().size = 2
    by_field.tensor_shape.dim.add().size = 2
    np.testing.assert_array_equal(tensors.to_ndarray(by_field), [[1.0, 2.0], [3.0, 4.0]])
    content = tensor_pb2.TensorProto(dtype=types_pb2.DT_INT64, tensor_content=np.array([5, 6], "<i8").tobytes())
    content.tensor_shape.dim.add().size = 2
    got = tensors.to_ndarray(content)
    assert got.dtype == np.int64 and got.tolist() == [5, 6]
    got[0] = 9  # a copy, not a view of the request's bytes
    assert tensors.to_ndarray(content).tolist() == [5, 6]


def test_a_single_value_fills_the_shape_as_tensorflow_does():
    proto = tensor_pb2.TensorProto(dtype=types_pb2.DT_STRING, string_val=[b"x"])
    proto.tensor_shape.dim.add().size = 3
    assert tensors.to_ndarray(proto).tolist() == [b"x", b"x", b"x"]


def _unknown_rank():
    from tensorflow.core.framework import tensor_shape_pb2

    return tensor_shape_pb2.TensorShapeProto(unknown_rank=True)


def _claiming(dtype, *dims, **fields) -> tensor_pb2.TensorProto:
    proto = tensor_pb2.TensorProto(dtype=dtype, **fields)
    for size in dims:
        proto.tensor_shape.dim.add().size = size
    return proto


@pytest.mark.parametrize(
    "proto,fragment",
    [
        (_claiming(types_pb2.DT_FLOAT, 2, tensor_content=b"\x00" * 6), "needs 8"),
        # 2^40 elements and no data: refused before TensorFlow would try to allocate 4 TiB.
        (_claiming(types_pb2.DT_FLOAT, 1 << 20, 1 << 20), "claims 1099511627776 elements"),
        (_claiming(types_pb2.DT_STRING, 1 << 40), "claims"),
        # Under the element limit, but filling it from one value would build 400 MB.
        (_claiming(types_pb2.DT_FLOAT, 100_000_000, float_val=[1.0]), "carries 1"),
        (_claiming(types_pb2.DT_HALF, 100_000_000), "does not carry"),
        (_claiming(types_pb2.DT_STRING, -1, string_val=[b"a"]), "Dimension -1 must be >= 0"),
        (_claiming(types_pb2.DT_INT32, *([1] * 255)), "over the limit of 254"),
        # Found by tests/fuzz: TensorFlow's reader ignores unknown_rank and allocates what the dims claim.
        (_claiming(types_pb2.DT_FLOAT, 1 << 27, 8, tensor_shape=_unknown_rank()), "unknown rank"),
    ],
)
def test_impossible_or_oversized_shapes_are_invalid_argument_before_any_allocation(proto, fragment):
    with pytest.raises(ServingError) as raised:
        tensors.to_ndarray(proto)
    assert raised.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert fragment in raised.value.message
