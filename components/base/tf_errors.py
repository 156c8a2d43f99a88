"""TensorFlow's error text, less its annotations: what a one-line report of a failure keeps.

A TensorFlow op error's message starts with the function's internal name
(`{{function_node __wrapped__MakeIterator_device_/job:localhost/...}}`), ends with the op
(`[Op:MakeIterator] name:`), and is followed by a line that names only the graph node
(`[[{{node ParallelInterleaveDatasetV4/_12}}]]`)."""

from __future__ import annotations

import re

_FUNCTION_NODE = re.compile(r"\{\{function_node [^}]*\}\}\s*")
_OP_SUFFIX = re.compile(r"\s*\[Op:[^\]]*\]( name:.*)?$")


def without_annotations(line: str) -> str:
    """One line of an error, without TensorFlow's function name and op."""
    return _OP_SUFFIX.sub("", _FUNCTION_NODE.sub("", line)).strip()


def is_node_line(line: str) -> bool:
    """The line after an op error's message that names only its graph node."""
    return line.strip().startswith("[[")
