"""NumPy arrays into eager tensors for a signature call, without TensorFlow 2.16's per-tensor leak.

On Python 3.11 and later, TF 2.16 keeps about 330 bytes for every tensor it builds from a Python or
NumPy value (`tf.constant`, `tf.convert_to_tensor`, an array passed to a function; TensorFlow issues
62551 and 68196), whatever the tensor's size, and never gives them back: a server doing that per
request grows by ~160 KB/s at 500 requests/s (BENCHMARKS.md, soak). Tensors made from a DLPack
capsule, and the tensors a function returns, are not affected. So:

- numbers and bools enter through DLPack, from a fresh copy aligned to 64 bytes (TensorFlow aborts
  the process on a misaligned buffer, and may reuse an input's buffer for an output, so the
  caller's array is never handed over);
- strings enter as one uint8 buffer of their bytes plus their lengths, both through DLPack, and a
  small TF function cuts them apart again (`serialize_tensor` puts the buffer's bytes last in one
  string; `substr` takes each value out of it): byte for byte what `tf.constant` gives.

Anything else (a dtype DLPack lacks, strings that are not bytes or text) goes through `tf.constant`,
which also gives the error a bad value deserves.
"""

from __future__ import annotations

import threading

import numpy as np
import tensorflow as tf

ALIGN = 64  # bytes; TensorFlow's CPU kernels CHECK that a tensor's buffer is aligned to this
_DLPACK_KINDS = "biufc"  # bool, signed, unsigned, float, complex

_lock = threading.Lock()
_join = None  # the concrete function that cuts a byte buffer into strings, made on first use


def eager_tensor(value: np.ndarray, dtype: tf.DType) -> tf.Tensor:
    """`value` as an eager tensor of `dtype`, equal to tf.constant(value, dtype)."""
    value = np.asarray(value)
    if dtype == tf.string and value.dtype.kind in "OSU":
        strings = _as_bytes(value)
        if strings is not None:
            return _strings(strings, value.shape)
    elif value.dtype.kind in _DLPACK_KINDS and value.dtype.isnative and value.dtype == dtype.as_numpy_dtype:
        return tf.experimental.dlpack.from_dlpack(_aligned_copy(value).__dlpack__())
    return tf.constant(value, dtype=dtype)


def _aligned_copy(value: np.ndarray) -> np.ndarray:
    buffer = np.empty(value.nbytes + ALIGN, np.uint8)
    start = -buffer.ctypes.data % ALIGN
    copy = buffer[start : start + value.nbytes].view(value.dtype).reshape(value.shape)
    copy[...] = value
    return copy


def _as_bytes(value: np.ndarray) -> list[bytes] | None:
    """Every element as bytes (text as UTF-8), in C order; None when one is neither."""
    found = []
    for item in value.reshape(-1).tolist():
        if isinstance(item, bytes):
            found.append(item)
        elif isinstance(item, str):
            found.append(item.encode("utf-8"))
        else:
            return None
    return found


def _strings(items: list[bytes], shape: tuple) -> tf.Tensor:
    def through_dlpack(array: np.ndarray) -> tf.Tensor:
        return tf.experimental.dlpack.from_dlpack(_aligned_copy(array).__dlpack__())

    values = np.frombuffer(b"".join(items), np.uint8)
    lengths = np.fromiter((len(item) for item in items), np.int64, len(items))
    return _join_function()(through_dlpack(values), through_dlpack(lengths), through_dlpack(np.array(shape, np.int64)))


def _join_function():
    global _join
    with _lock:
        if _join is None:
            vector = tf.TensorSpec([None], tf.int64)

            @tf.function(input_signature=[tf.TensorSpec([None], tf.uint8), vector, vector], autograph=False)
            def join(values, lengths, shape):
                blob = tf.io.serialize_tensor(values)  # a TensorProto whose last field is the raw bytes
                start = tf.cast(tf.strings.length(blob), tf.int64) - tf.size(values, out_type=tf.int64)
                offsets = start + tf.cumsum(lengths, exclusive=True)
                return tf.reshape(tf.strings.substr(blob, offsets, lengths), shape)

            _join = join.get_concrete_function()
        return _join
