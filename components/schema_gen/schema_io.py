"""Reading and writing schema.pbtxt, with one clear error for a file that does not parse."""

from __future__ import annotations

import os

from google.protobuf import text_format
from tensorflow_metadata.proto.v0 import schema_pb2

from components.base import fileio

SCHEMA_FILE = "schema.pbtxt"


class SchemaError(ValueError):
    pass


def load_schema(path: str) -> schema_pb2.Schema:
    if fileio.isdir(path):
        path = os.path.join(path, SCHEMA_FILE)
    if not fileio.exists(path):
        raise SchemaError(f"schema file not found: {path}")
    try:
        with fileio.open(path) as f:
            schema = text_format.Parse(f.read(), schema_pb2.Schema())
    except (text_format.ParseError, UnicodeDecodeError) as error:
        raise SchemaError(f"schema file {path} does not parse: {error}") from None
    if not schema.feature:
        raise SchemaError(f"schema file {path} declares no features")
    return schema


def write_schema(schema: schema_pb2.Schema, directory: str) -> str:
    fileio.makedirs(directory)
    path = os.path.join(directory, SCHEMA_FILE)
    with fileio.open(path, "w") as f:
        f.write(text_format.MessageToString(schema))
    return path
