"""TensorProto <-> numpy for the gRPC API, fast for the dtypes requests carry.

tf.make_ndarray and tf.make_tensor_proto handle every case but cost tens of
microseconds of Python per tensor, which is a visible share of a Predict call
here. These functions read and write the common dtypes directly and fall back
to TensorFlow's for the rest, so every TensorProto a client may send (and
every output a model may return) still works.

Outputs are written as TF Serving writes them by default (`Tensor::AsProtoField`:
values in the typed repeated field such as `float_val` or `string_val`, not
`tensor_content`), so clients that read those fields directly work unchanged."""

from __future__ import annotations

import math

import numpy as np
import tensorflow as tf
from tensorflow.core.framework import tensor_pb2, types_pb2

from serving.model_server.errors import invalid

# dtype enum -> (numpy dtype, TensorProto field holding the values)
_READ = {
    types_pb2.DT_FLOAT: (np.float32, "float_val"),
    types_pb2.DT_DOUBLE: (np.float64, "double_val"),
    types_pb2.DT_INT32: (np.int32, "int_val"),
    types_pb2.DT_INT16: (np.int16, "int_val"),
    types_pb2.DT_INT8: (np.int8, "int_val"),
    types_pb2.DT_UINT8: (np.uint8, "int_val"),
    types_pb2.DT_UINT16: (np.uint16, "int_val"),
    types_pb2.DT_INT64: (np.int64, "int64_val"),
    types_pb2.DT_BOOL: (np.bool_, "bool_val"),
}
# numpy dtype -> (dtype enum, field)
_WRITE = {np.dtype(numpy_type): (enum, field) for enum, (numpy_type, field) in _READ.items()}
# Fields whose packed wire form is the array's little-endian bytes: (tag byte, dtype of the bytes).
# Merging those bytes is ~6x faster than extending the field value by value.
_PACKED = {
    "float_val": (b"\x2a", "<f4"),  # field 5, fixed32
    "double_val": (b"\x32", "<f8"),  # field 6, fixed64
    "bool_val": (b"\x5a", "u1"),  # field 11, varint: 0 and 1 are one byte each
}


def _varint(n: int) -> bytes:
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


# Claimed shapes are checked before anything is allocated: a request tensor holds at most
# MAX_ELEMENTS, and one whose message carries fewer values than its shape claims (TensorFlow fills the
# rest from the last value) may make the server build at most MAX_FILL_BYTES that way.
MAX_ELEMENTS = 1 << 28
MAX_FILL_BYTES = 64 << 20
MAX_RANK = 254  # TensorShape::kMaxDims


def _claimed(proto: tensor_pb2.TensorProto) -> tuple[tuple[int, ...], int]:
    """The shape and element count a TensorProto claims, refused (INVALID_ARGUMENT) when impossible or too large."""
    dims = proto.tensor_shape.dim
    if len(dims) > MAX_RANK:
        raise invalid(f"Shape has {len(dims)} dimensions which is over the limit of {MAX_RANK}")
    shape = tuple(d.size for d in dims)
    for size in shape:
        if size < 0:
            raise invalid(f"Dimension {size} must be >= 0")
    count = math.prod(shape)
    if count > MAX_ELEMENTS:
        raise invalid(f"tensor shape {list(shape)} claims {count} elements; a request tensor may hold {MAX_ELEMENTS}")
    return shape, count


def _filled(
    proto: tensor_pb2.TensorProto, shape: tuple[int, ...], count: int, carried: int, itemsize: int
) -> np.ndarray:
    """TensorFlow's reading of a tensor whose values do not match its shape, within MAX_FILL_BYTES."""
    if count * itemsize > MAX_FILL_BYTES:
        carries = f"carries {carried}" if carried >= 0 else "does not carry them"
        raise invalid(f"tensor shape {list(shape)} claims {count} elements but the request {carries}")
    return tf.make_ndarray(proto)


def to_ndarray(proto: tensor_pb2.TensorProto) -> np.ndarray:
    """The array a TensorProto holds (what tf.make_ndarray returns)."""
    if proto.tensor_shape.unknown_rank and proto.tensor_shape.dim:
        # TensorFlow's reader would ignore the flag and allocate whatever the dimensions claim.
        raise invalid("a tensor shape of unknown rank cannot list dimensions")
    shape, count = _claimed(proto)  # unknown rank and no dimensions: a scalar, as TensorFlow reads it
    if proto.dtype == types_pb2.DT_STRING:
        values = proto.string_val
        if len(values) == count:
            return np.array(list(values), dtype=object).reshape(shape)
        return _filled(proto, shape, count, len(values), 8)  # one value broadcast to the shape, or an error
    read = _READ.get(proto.dtype)
    if read is None:  # half, complex, ...: TensorFlow reads them, within the same bound
        return _filled(proto, shape, count, -1, 16)
    numpy_type, field = read
    itemsize = np.dtype(numpy_type).itemsize
    if proto.tensor_content:
        if len(proto.tensor_content) != count * itemsize:
            raise invalid(
                f"tensor_content holds {len(proto.tensor_content)} bytes; shape {list(shape)} "
                f"of {np.dtype(numpy_type).name} needs {count * itemsize}"
            )
        return np.frombuffer(proto.tensor_content, dtype=numpy_type).reshape(shape).copy()
    values = getattr(proto, field)
    if len(values) != count:
        return _filled(proto, shape, count, len(values), itemsize)
    return np.array(values, dtype=numpy_type).reshape(shape)


def fill_tensor_proto(proto: tensor_pb2.TensorProto, array: np.ndarray) -> None:
    """Writes `array` into an empty TensorProto (a response's output map entry), as TF Serving does."""
    array = np.asarray(array)
    if array.dtype.kind in ("O", "S", "U"):
        proto.dtype = types_pb2.DT_STRING
        proto.string_val.extend(v if isinstance(v, bytes) else str(v).encode("utf-8") for v in array.ravel())
    else:
        write = _WRITE.get(array.dtype)
        if write is None:  # half, complex, unsigned 32/64, ...: TensorFlow's own encoding
            proto.CopyFrom(tf.make_tensor_proto(array))
            return
        proto.dtype, field = write
        packed = _PACKED.get(field)
        if packed is None:
            getattr(proto, field).extend(array.ravel().tolist())
        elif array.size:
            tag, wire_dtype = packed
            raw = np.ascontiguousarray(array, dtype=wire_dtype).tobytes()
            proto.MergeFromString(tag + _varint(len(raw)) + raw)
    dims = proto.tensor_shape.dim
    for size in array.shape:
        dims.add().size = size
