"""Anomalies as files (pbtxt + JSON) and as the readable list users see."""

from __future__ import annotations

import json
import os

from google.protobuf import json_format, text_format
from tensorflow_metadata.proto.v0 import anomalies_pb2, statistics_pb2

from components.base import fileio

ANOMALIES_PBTXT = "SchemaDiff.pbtxt"
ANOMALIES_JSON = "anomalies.json"


def anomaly_rows(
    anomalies: anomalies_pb2.Anomalies, stats: statistics_pb2.DatasetFeatureStatisticsList | None = None
) -> list[dict]:
    """One dict per anomalous feature (or the dataset): feature, short and long description, example values."""
    rows = []
    for feature, info in sorted(anomalies.anomaly_info.items()):
        rows.append(
            {
                "feature": feature,
                "short_description": info.short_description,
                "description": info.description,
                "severity": anomalies_pb2.AnomalyInfo.Severity.Name(info.severity),
                "examples": _example_values(stats, feature),
            }
        )
    if anomalies.HasField("dataset_anomaly_info"):
        info = anomalies.dataset_anomaly_info
        rows.append(
            {
                "feature": "(dataset)",
                "short_description": info.short_description,
                "description": info.description,
                "severity": anomalies_pb2.AnomalyInfo.Severity.Name(info.severity),
                "examples": [],
            }
        )
    return rows


def _example_values(stats, feature: str, limit: int = 5) -> list[str]:
    if stats is None or not stats.datasets:
        return []
    for f in stats.datasets[0].features:
        if ".".join(f.path.step) == feature or f.name == feature:
            if f.HasField("string_stats"):
                return [v.value[:40] for v in f.string_stats.top_values[:limit]]
            if f.HasField("num_stats"):
                s = f.num_stats
                return [f"min {s.min:g}", f"max {s.max:g}", f"mean {s.mean:g}"]
    return []


def format_rows(rows: list[dict], header: str = "") -> str:
    lines = [header] if header else []
    for row in rows:
        examples = f" (values: {', '.join(row['examples'])})" if row["examples"] else ""
        lines.append(f"  - {row['feature']}: {row['short_description']} -- {row['description']}{examples}")
    return "\n".join(lines)


def write_anomalies(directory: str, anomalies: anomalies_pb2.Anomalies, rows: list[dict]) -> None:
    fileio.makedirs(directory)
    with fileio.open(os.path.join(directory, ANOMALIES_PBTXT), "w") as f:
        f.write(text_format.MessageToString(anomalies))
    with fileio.open(os.path.join(directory, ANOMALIES_JSON), "w") as f:
        json.dump({"anomalies": rows, "raw": json_format.MessageToDict(anomalies)}, f, indent=2)


def read_rows(directory: str) -> list[dict]:
    path = os.path.join(directory, ANOMALIES_JSON)
    if not fileio.exists(path):
        return []
    with fileio.open(path) as f:
        return json.load(f)["anomalies"]
