"""NumPy arrays into eager tensors for a signature call, without TensorFlow 2.16's per-tensor leak.

On Python 3.11 and later, TF 2.16 keeps about 330 bytes for every tensor it builds from a Python or
NumPy value (`tf.constant`, `tf.convert_to_tensor`, an array passed to a function; TensorFlow issues
62551 and 68196), whatever the tensor's size, and never gives them back: a server doing that per
request grows by ~160 KB/s at 500 requests/s (BENCHMARKS.md, soak). Tensors made from a DLPack
capsule, and the tensors a function returns, are not affected. So:

- numbers and bools enter through DLPack, from a fresh copy aligned to 64 bytes (TensorFlow aborts
  the process on a misaligned buffer, and may reuse an input's buffer for an output, so the
  caller's array is never handed over);
- strings enter as one uint8 buffer of their bytes plus their lengths, both through DLPack, and TF
  code cuts them apart again (`serialize_tensor` puts the buffer's bytes last in one string;
  `substr` takes each value out of it): byte for byte what `tf.constant` gives. `SignatureCall`
  does that inside the same function call as the signature's, so it costs no extra call.

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
        return _through_dlpack(value)
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


class SignatureCall:
    """Calls a signature's concrete function with NumPy inputs, leak-free and in one function call:
    numbers enter through DLPack; each string input enters as its bytes, lengths and shape, and one
    tf.function cuts the strings apart and calls the signature (a separate call to cut them would
    cost ~150 us more per request). Returns the signature's output tensors."""

    def __init__(self, function, input_specs: dict[str, tf.TensorSpec]) -> None:
        self._function = function
        self._specs = input_specs
        self._keys = sorted(input_specs)
        self._strings = {k for k, spec in input_specs.items() if spec.dtype == tf.string}
        self._fused = None
        self._lock = threading.Lock()

    def __call__(self, inputs: dict[str, np.ndarray]) -> dict[str, tf.Tensor]:
        flat: list[tf.Tensor] = []
        if self._strings and sorted(inputs) == self._keys:
            for key in self._keys:
                value = np.asarray(inputs[key])
                if key not in self._strings:
                    flat.append(eager_tensor(value, self._specs[key].dtype))
                    continue
                items = _as_bytes(value) if value.dtype.kind in "OSU" else None
                if items is None:
                    break
                flat += _string_parts(items, value.shape)
            else:
                return self._fused_function()(*flat)
        # no strings, or inputs the fused function cannot take: TensorFlow raises the client's error
        return self._function(**{k: eager_tensor(v, self._specs[k].dtype) for k, v in inputs.items()})

    def _fused_function(self):
        with self._lock:
            if self._fused is None:
                vector = tf.TensorSpec([None], tf.int64)
                specs: list[tf.TensorSpec] = []
                for key in self._keys:
                    if key in self._strings:
                        specs += [tf.TensorSpec([None], tf.uint8), vector, vector]
                    else:
                        specs.append(self._specs[key])

                @tf.function(input_signature=specs, autograph=False)
                def fused(*flat):
                    args, i = {}, 0
                    for key in self._keys:
                        if key in self._strings:
                            strings = _cut(flat[i], flat[i + 1], flat[i + 2])
                            args[key], i = tf.ensure_shape(strings, self._specs[key].shape), i + 3
                        else:  # a concrete function called with flat tensors does not check their shapes
                            args[key], i = tf.ensure_shape(flat[i], self._specs[key].shape), i + 1
                    return self._function(**args)

                self._fused = fused.get_concrete_function()
            return self._fused


def _through_dlpack(array: np.ndarray) -> tf.Tensor:
    return tf.experimental.dlpack.from_dlpack(_aligned_copy(array).__dlpack__())


def _string_parts(items: list[bytes], shape: tuple) -> list[tf.Tensor]:
    """The strings as three tensors made through DLPack: all their bytes, their lengths, the shape."""
    values = np.frombuffer(b"".join(items), np.uint8)
    lengths = np.fromiter((len(item) for item in items), np.int64, len(items))
    return [_through_dlpack(values), _through_dlpack(lengths), _through_dlpack(np.array(shape, np.int64))]


def _cut(values: tf.Tensor, lengths: tf.Tensor, shape: tf.Tensor) -> tf.Tensor:
    """Graph code: the strings back from their bytes (serialize_tensor puts the buffer's bytes last in
    one string, substr takes each value out of it), in their shape."""
    blob = tf.io.serialize_tensor(values)
    start = tf.cast(tf.strings.length(blob), tf.int64) - tf.size(values, out_type=tf.int64)
    offsets = start + tf.cumsum(lengths, exclusive=True)
    return tf.reshape(tf.strings.substr(blob, offsets, lengths), shape)


def _strings(items: list[bytes], shape: tuple) -> tf.Tensor:
    return _join_function()(*_string_parts(items, shape))


def _join_function():
    global _join
    with _lock:
        if _join is None:
            vector = tf.TensorSpec([None], tf.int64)
            specs = [tf.TensorSpec([None], tf.uint8), vector, vector]
            _join = tf.function(_cut, input_signature=specs, autograph=False).get_concrete_function()
        return _join
