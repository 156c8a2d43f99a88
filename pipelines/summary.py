"""The closing summary `pipelines run` prints: what was made and where to look."""

from __future__ import annotations

import os

from components.statistics_gen.stats_io import HTML_FILE
from components.trainer.fn_args import CURVES_FILE


def _first(result, component_id: str, key: str):
    component = result.components.get(component_id)
    if component is None or key not in component.outputs:
        return None
    return component.outputs[key][0]


def data_summary(result) -> str:
    lines = [f"summary of {result.pipeline_name} run {result.run_id}:"]
    example_gens = [c for c in result.components if c.endswith("ExampleGen")]
    examples = _first(result, example_gens[0], "examples") if example_gens else None
    if examples is not None:
        counts = ", ".join(f"{split} {examples.get(f'num_examples_{split}', '?')}" for split in examples.split_names)
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


def run_summary(result) -> str:
    lines = [data_summary(result)]
    model = _first(result, "Trainer", "model")
    if model is not None:
        lines.append(f"  model:       {model.uri}")
        lines.append(f"  curves:      {os.path.join(model.uri, CURVES_FILE)}")
        if model.get("training_reason"):
            restored = (
                f", weights of epoch {model.get('training_restored_epoch')} restored"
                if model.get("training_restored_epoch")
                else ""
            )
            lines.append(
                f"  training:    stopped by {model.get('training_reason')} after epoch {model.get('training_epochs')} "
                f"at learning rate {model.get('training_lr'):.2e} (peak {model.get('training_peak_lr'):.2e}){restored}"
            )
    evaluation = _first(result, "Evaluator", "evaluation")
    if evaluation is not None:
        metrics = {k: v for k, v in evaluation.properties.items() if isinstance(v, float) and k != "num_examples"}
        shown = ", ".join(f"{k} {v:.4f}" for k, v in sorted(metrics.items()))
        lines.append(f"  test split:  {shown}")
    blessing = _first(result, "Evaluator", "blessing")
    if blessing is not None:
        verdict = "blessed" if blessing.get("blessed") else "NOT blessed"
        lines.append(f"  evaluator:   {verdict}: {blessing.get('reason', '')}")
    infra = _first(result, "InfraValidator", "blessing")
    if infra is not None:
        verdict = "passed" if infra.get("blessed") else "FAILED"
        lines.append(f"  infra:       {verdict}: {infra.get('reason', '')}")
    pushed = _first(result, "Pusher", "pushed_model")
    if pushed is not None:
        if pushed.get("pushed"):
            note = f" ({pushed.get('reason')})" if pushed.get("reason") else ""
            lines.append(
                f"  pushed:      version {pushed.get('pushed_version')} -> {pushed.get('pushed_destination')}{note}"
            )
        else:
            lines.append(f"  NOT pushed:  {pushed.get('reason', '')}")
    return "\n".join(lines)
