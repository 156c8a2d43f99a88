"""The closing summary `pipelines run` prints: what was made and where to look."""
from __future__ import annotations

import os

from components.statistics_gen.stats_io import HTML_FILE


def _first(result, component_id: str, key: str):
    component = result.components.get(component_id)
    if component is None or key not in component.outputs:
        return None
    return component.outputs[key][0]


def data_summary(result) -> str:
    lines = [f"summary of {result.pipeline_name} run {result.run_id}:"]
    examples = _first(result, "CaptchaExampleGen", "examples") or _first(result, "CsvExampleGen", "examples")
    if examples is not None:
        counts = ", ".join(
            f"{split} {examples.get(f'num_examples_{split}', '?')}" for split in examples.split_names
        )
        lines.append(f"  examples:    {counts}  ({examples.uri})")
    statistics = _first(result, "StatisticsGen", "statistics")
    if statistics is not None:
        lines.append(f"  statistics:  {os.path.join(statistics.uri, HTML_FILE)}")
    schema = _first(result, "SchemaGen", "schema")
    if schema is not None:
        lines.append(f"  schema:      {schema.get('source', '')} ({schema.uri})")
    anomalies = _first(result, "ExampleValidator", "anomalies")
    if anomalies is not None:
        lines.append(f"  anomalies:   {anomalies.get('num_anomalies', 0)}  ({anomalies.uri})")
    graph = _first(result, "Transform", "transform_graph")
    if graph is not None:
        lines.append(f"  transform:   {graph.uri}")
    return "\n".join(lines)
