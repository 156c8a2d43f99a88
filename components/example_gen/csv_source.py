"""CSV rows to tf.train.Example, typed by the schema when there is one."""

from __future__ import annotations

import csv
import io
import itertools

import tensorflow as tf
from tensorflow_metadata.proto.v0 import schema_pb2

INT, FLOAT, BYTES = "INT", "FLOAT", "BYTES"


class CsvFormatError(ValueError):
    pass


# The UTF-8 byte-order mark that Excel's "CSV UTF-8" and Windows tools write at the start of a file.
# Read as text it is U+FEFF, glued to the first field: a header "area" became "\ufeffarea" (a column
# the schema does not know, and "area" missing) and a first value 2104 a string.
BOM = "\ufeff"


def without_bom(line: str) -> str:
    """The line without a leading byte-order mark (only a file's first line has one)."""
    return line[1:] if line.startswith(BOM) else line


def parse_line(line: str, delimiter: str = ",") -> list[str]:
    return next(csv.reader(io.StringIO(line), delimiter=delimiter), [])


def read_first_line(path: str) -> str:
    with tf.io.gfile.GFile(path, "rb") as f:
        return without_bom(decode_line(f.readline(), path, "line 1").rstrip("\r\n"))


def decode_line(raw: bytes, path: str, which: str = "a line") -> str:
    """One line's bytes as text; a ValueError naming the file and the bytes where they are not UTF-8
    (Python's own UnicodeDecodeError named neither)."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ValueError(f"{path}: {which} is not UTF-8 text (at byte {error.start}: {raw[:32]!r})") from None


def schema_columns(schema: schema_pb2.Schema) -> list[tuple[str, str]]:
    kinds = {schema_pb2.INT: INT, schema_pb2.FLOAT: FLOAT, schema_pb2.BYTES: BYTES}
    return [(f.name, kinds.get(f.type, BYTES)) for f in schema.feature]


def resolve_header(first_fields: list[str], column_names: list[str] | None) -> tuple[list[str], bool]:
    """(column names, whether the first line is a header).

    The first line is a header when none of its fields is a number and, if
    column names are known (from a schema), at least one field is one of them;
    it may then name fewer or other columns than the schema (validation says
    which are missing or new). Otherwise the file has no header and the known
    column names apply in order.
    """
    stripped = [f.strip() for f in first_fields]
    looks_like_header = bool(stripped) and all(name and _kind(name) == BYTES for name in stripped)
    repeated = sorted({name for name in stripped if stripped.count(name) > 1})
    if looks_like_header and repeated:  # two columns of one name: which is the feature? (Arrow failed on it)
        raise CsvFormatError(f"the header names {', '.join(repeated)} more than once; each column needs its own name")
    if column_names:
        if looks_like_header and set(stripped) & set(column_names):
            return stripped, True
        return list(column_names), False
    if not looks_like_header:
        raise CsvFormatError(
            f"the first line ({','.join(first_fields)}) is not a header and no schema gives the column names"
        )
    return stripped, True


def _kind(value: str) -> str:
    try:
        int(value)
        return INT
    except ValueError:
        pass
    try:
        float(value)
        return FLOAT
    except ValueError:
        return BYTES


def merge_kinds(a: str | None, b: str | None) -> str | None:
    """The narrowest kind that holds both: INT < FLOAT < BYTES; None means 'no value seen'."""
    if a is None or b is None:
        return a or b
    order = [INT, FLOAT, BYTES]
    return order[max(order.index(a), order.index(b))]


def infer_kinds(rows_kinds: list[list[str | None]]) -> list[str | None]:
    merged: list[str | None] = []
    for kinds in rows_kinds:
        if not merged:
            merged = list(kinds)
        else:
            # A row of the wrong length must not narrow the columns; to_example reports it.
            merged = [merge_kinds(a, b) for a, b in itertools.zip_longest(merged, kinds)]
    return merged


def row_kinds(fields: list[str]) -> list[str | None]:
    return [_kind(v.strip()) if v.strip() else None for v in fields]


def to_example(fields: list[str], columns: list[tuple[str, str]], line_hint: str = "") -> tf.train.Example:
    if len(fields) != len(columns):
        raise CsvFormatError(
            f"row has {len(fields)} fields, expected {len(columns)} ({', '.join(c for c, _ in columns)}): {line_hint!r}"
        )
    example = tf.train.Example()
    for (name, kind), raw in zip(columns, fields):
        value = raw.strip()
        if not value:
            continue  # a missing value is an absent feature, as TFDV expects
        feature = example.features.feature[name]
        try:
            if kind == INT:
                feature.int64_list.value.append(int(value))
            elif kind == FLOAT:
                feature.float_list.value.append(float(value))
            else:
                feature.bytes_list.value.append(value.encode("utf-8"))
        except ValueError:
            raise CsvFormatError(f"column {name!r}: {value!r} is not {kind.lower()} (row {line_hint!r})") from None
    return example
