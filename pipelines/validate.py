"""Batch data validation: a CSV or TFRecord file against a schema, streamed through Beam.

Exit codes: 0 clean, 1 anomalies found, 2 unusable input (one clear line).
"""

from __future__ import annotations

import dataclasses
import os
import re
import sys
import time

import apache_beam as beam
import pyarrow as pa
import tensorflow_data_validation as tfdv
from tensorflow_metadata.proto.v0 import schema_pb2, statistics_pb2

from components.base.beam import CountProgress, make_pipeline, run_pipeline
from components.example_gen import csv_source
from components.example_validator.anomalies_io import anomaly_rows, format_rows, write_anomalies
from components.example_validator.drift_chart import DRIFT_CHART, draw_drift
from components.schema_gen.schema_io import load_schema
from components.statistics_gen.stats_html import statistics_html
from components.statistics_gen.stats_io import HTML_FILE, STATS_FILE
from pipelines.validate_checks import EXIT_ANOMALIES, EXIT_CLEAN, UnusableInput, check_data_file, folder_problem

TFRECORD_SUFFIXES = (".tfrecord", ".tfrecords", ".tfrecord.gz", ".tfrecords.gz")


@dataclasses.dataclass
class CsvLayout:
    column_names: list[str]
    has_header: bool
    rows: int


def check_csv(path: str, schema: schema_pb2.Schema) -> CsvLayout:
    """One streaming pass: UTF-8, a consistent number of fields, at least one data row."""
    names = [f.name for f in schema.feature]
    layout = None
    rows = 0
    with open(path, "rb") as f:
        for number, raw in enumerate(f, start=1):
            try:
                line = raw.decode("utf-8").rstrip("\r\n")
                if number == 1:
                    line = csv_source.without_bom(line)
            except UnicodeDecodeError:
                raise UnusableInput(f"{path}: line {number} is not UTF-8 text") from None
            if not line.strip():
                continue
            try:
                fields = csv_source.parse_line(line)
            except Exception as error:  # noqa: BLE001 - csv.Error: e.g. a NUL byte or a runaway quote
                raise UnusableInput(f"{path}: line {number} is not valid CSV: {error}") from None
            if layout is None:
                try:
                    columns, has_header = csv_source.resolve_header(fields, names)
                except csv_source.CsvFormatError as error:
                    raise UnusableInput(f"{path}: {error}") from None
                layout = CsvLayout(columns, has_header, 0)
                if has_header:
                    continue
            if len(fields) != len(layout.column_names):
                raise UnusableInput(
                    f"{path}: line {number} has {len(fields)} fields, expected {len(layout.column_names)} "
                    f"({','.join(layout.column_names)}){_delimiter_hint(fields)}"
                )
            rows += 1
    if layout is None or rows == 0:
        raise UnusableInput(f"{path}: no data rows")
    layout.rows = rows
    return layout


def check_tfrecord(path: str) -> int:
    """One streaming pass: every record intact (its length and data checksums) and a tf.Example;
    the number of records. A corrupt file was a failed Beam job (exit 4) half-way through."""
    import tensorflow as tf
    from google.protobuf.message import DecodeError

    compression = "GZIP" if path.lower().endswith(".gz") else ""
    records = tf.data.TFRecordDataset(path, compression_type=compression).as_numpy_iterator()
    count = 0
    kinds: dict[str, tuple[str, int]] = {}  # feature -> (its value list's kind, the first record with it)
    while True:
        try:
            raw = next(records)
        except StopIteration:
            break
        except tf.errors.OpError as error:  # DataLossError: a bad length or checksum; gzip that is not
            reason = re.sub(r"\{\{function_node [^}]*\}\}\s*|\s*\[Op:\w+\].*", "", str(error.message)).strip()[:160]
            raise UnusableInput(f"{path}: record {count + 1} cannot be read: {reason}") from None
        count += 1
        try:
            example = tf.train.Example.FromString(raw)
        except DecodeError:
            raise UnusableInput(f"{path}: record {count} is not a tf.Example") from None
        # One feature, one type across the file (TFDV's column of it has one): a feature of floats here
        # and integers there was a failed Beam job ("Unable to merge incompatible type").
        for name, feature in example.features.feature.items():
            kind = feature.WhichOneof("kind")
            if kind is None:  # no values: any type
                continue
            first = kinds.setdefault(name, (kind, count))
            if first[0] != kind:
                raise UnusableInput(
                    f"{path}: record {count} has feature {name!r} as {kind}, record {first[1]} as {first[0]}; "
                    "a feature keeps one type in every record"
                )
    if count == 0:
        raise UnusableInput(f"{path}: no tf.Example records")
    return count


def _delimiter_hint(fields: list[str]) -> str:
    """For a line read as one field that another delimiter would split (European Excel writes ';')."""
    if len(fields) == 1:
        for delimiter, name in ((";", "semicolons"), ("\t", "tabs"), ("|", "bars")):
            if delimiter in fields[0]:
                return f"; its fields look separated by {name}: this reads comma-separated values"
    return ""


def _widen_to_schema_floats(record_batch: pa.RecordBatch, float_columns: frozenset) -> pa.RecordBatch:
    """Integers in a column the schema declares FLOAT are floats (2104 is a valid area). A column with
    no value in the batch (every field empty) is of Arrow's null type, left as it is: TFDV counts it missing."""
    arrays = []
    for name, column in zip(record_batch.schema.names, record_batch.columns):
        listed = pa.types.is_list(column.type) or pa.types.is_large_list(column.type)
        if name in float_columns and listed and pa.types.is_integer(column.type.value_type):
            list_type = pa.large_list if pa.types.is_large_list(column.type) else pa.list_
            column = column.cast(list_type(pa.float32()))
        arrays.append(column)
    return pa.RecordBatch.from_arrays(arrays, record_batch.schema.names)


def compute_csv_statistics(path, layout, schema, beam_args, stats_path):
    from tensorflow_data_validation.coders import csv_decoder

    floats = frozenset(f.name for f in schema.feature if f.type == schema_pb2.FLOAT)
    pipeline = make_pipeline(beam_args)
    _ = (
        pipeline
        | "ReadCsv" >> beam.io.ReadFromText(path, skip_header_lines=1 if layout.has_header else 0)
        | "DropBlankLines" >> beam.Filter(lambda line: line.strip())
        | "DropByteOrderMark" >> beam.Map(csv_source.without_bom)
        | "Progress" >> beam.ParDo(CountProgress("validate: rows", every=100_000, total=layout.rows))
        | "DecodeCsv" >> csv_decoder.DecodeCSV(column_names=layout.column_names)
        | "WidenToSchemaFloats" >> beam.Map(_widen_to_schema_floats, floats)
        | "GenerateStatistics" >> tfdv.GenerateStatistics(tfdv.StatsOptions())
        | "WriteStatistics" >> tfdv.WriteStatisticsToBinaryFile(stats_path)
    )
    run_pipeline(pipeline)
    return tfdv.load_stats_binary(stats_path)


def compute_tfrecord_statistics(path, beam_args, stats_path):
    from tfx_bsl.public import tfxio

    pipeline = make_pipeline(beam_args)
    _ = (
        pipeline
        | "ReadExamples" >> tfxio.TFExampleRecord(file_pattern=path, telemetry_descriptors=["validate"]).BeamSource()
        | "GenerateStatistics" >> tfdv.GenerateStatistics(tfdv.StatsOptions())
        | "WriteStatistics" >> tfdv.WriteStatisticsToBinaryFile(stats_path)
    )
    run_pipeline(pipeline)
    stats = tfdv.load_stats_binary(stats_path)
    if not stats.datasets or stats.datasets[0].num_examples == 0:
        raise UnusableInput(f"{path}: no tf.Example records")
    return stats


def load_baseline(path: str) -> statistics_pb2.DatasetFeatureStatisticsList:
    if not os.path.isfile(path):
        raise UnusableInput(f"baseline statistics not found: {path}")
    for loader in (tfdv.load_stats_binary, tfdv.load_statistics):
        try:
            stats = loader(path)
            if stats.datasets:
                return stats
        except Exception:  # noqa: BLE001 - try the next format
            continue
    raise UnusableInput(f"baseline statistics {path} are not a DatasetFeatureStatisticsList (binary or TFRecord)")


def choose_environment(schema: schema_pb2.Schema, present: set[str]) -> str | None:
    """The first default environment in which every feature the data lacks is allowed to be absent."""
    environments = list(schema.default_environment)
    if not environments:
        return None
    missing = [f for f in schema.feature if f.name not in present]
    for environment in environments:
        if all(_excluded(f, environment) for f in missing):
            return environment
    return environments[0]


def _excluded(feature, environment: str) -> bool:
    if environment in feature.not_in_environment:
        return True
    return bool(feature.in_environment) and environment not in feature.in_environment


def _present_features(stats) -> set[str]:
    return {".".join(f.path.step) or f.name for f in stats.datasets[0].features}


def validate(
    data: str,
    schema_path: str,
    baseline_stats: str | None = None,
    report_dir: str | None = None,
    environment: str | None = "auto",
    beam_args: list[str] | None = None,
    out=sys.stdout,
) -> int:
    started = time.monotonic()
    check_data_file(data)
    schema = load_schema(schema_path)
    baseline = load_baseline(baseline_stats) if baseline_stats else None
    if environment not in (None, "auto") and environment not in schema.default_environment:
        known = ", ".join(schema.default_environment) or "none"
        raise UnusableInput(f"environment {environment!r} is not one of the schema's ({known})")
    report_dir = report_dir or os.path.join("reports", os.path.basename(data).split(".")[0] or "data")
    # Before the data is read: a report that cannot be written would lose that work.
    problem = folder_problem(report_dir)
    if problem:
        raise UnusableInput(f"report folder {report_dir}: {problem}")
    try:
        os.makedirs(report_dir, exist_ok=True)
    except OSError as error:
        raise UnusableInput(f"report folder {report_dir} cannot be made: {error.strerror}") from None
    stats_path = os.path.join(report_dir, STATS_FILE)

    if data.lower().endswith(TFRECORD_SUFFIXES):
        count = check_tfrecord(data)
        print(f"validating TFRecord {data}: {count:,} records against {schema_path}", file=out)
        stats = compute_tfrecord_statistics(data, beam_args or [], stats_path)
    else:
        layout = check_csv(data, schema)
        header = "header row" if layout.has_header else "no header; columns from the schema"
        print(f"validating CSV {data}: {layout.rows:,} rows ({header}) against {schema_path}", file=out)
        stats = compute_csv_statistics(data, layout, schema, beam_args or [], stats_path)

    if environment == "auto":
        environment = choose_environment(schema, _present_features(stats))
        if environment:
            print(f"schema environment: {environment}", file=out)
    result = tfdv.validate_statistics(stats, schema, environment=environment, previous_statistics=baseline)
    rows = anomaly_rows(result, stats)
    write_anomalies(report_dir, result, rows)
    drift = ""
    if draw_drift({os.path.basename(data): result}, os.path.join(report_dir, DRIFT_CHART), baseline_stats or ""):
        drift = DRIFT_CHART
    with open(os.path.join(report_dir, HTML_FILE), "w", encoding="utf-8") as f:
        name = os.path.basename(data)
        f.write(statistics_html({name: stats}, f"statistics of {data}", drift_chart=drift, anomalies={name: rows}))
    elapsed = time.monotonic() - started
    if rows:
        print(format_rows(rows, f"{len(rows)} anomal{'y' if len(rows) == 1 else 'ies'} found:"), file=out)
        print(f"report: {report_dir} ({elapsed:.1f}s)", file=out)
        return EXIT_ANOMALIES
    print(f"no anomalies; report: {report_dir} ({elapsed:.1f}s)", file=out)
    return EXIT_CLEAN
