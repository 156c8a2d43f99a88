"""`pipelines compare`: train one variant per value of a parameter and overlay their curves,
like the book's optimizer and loss comparisons. Components upstream of the Trainer are shared
through the cache, so only training is repeated."""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
import time

from components.base import fileio
from pipelines.compare_runs import plot_overlaid
from pipelines.registry import PipelineEntry, RunOptions
from pipelines.runner import LocalRunner

TRAINER_ID = "Trainer"


@dataclasses.dataclass
class Variant:
    value: str
    history: dict[str, list[float]]
    seconds: float
    model_uri: str


def _best(values: list[float], higher_is_better: bool) -> float:
    return max(values) if higher_is_better else min(values)


def _higher_is_better(metric: str) -> bool:
    return "accuracy" in metric


def run_variants(
    entry: PipelineEntry, base: RunOptions, param: str, values: list[str], runner: LocalRunner
) -> tuple[list[Variant], str]:
    variants, metric = [], "loss"
    for value in values:
        options = dataclasses.replace(base, params={**base.params, param: value})
        pipeline = entry.create(options)
        metric = pipeline.primary_metric
        started = time.monotonic()
        result = runner.run(pipeline.up_to(TRAINER_ID))
        [model] = result.outputs(TRAINER_ID, "model")
        with fileio.open(os.path.join(model.uri, "history.json")) as f:
            history = json.load(f)
        variants.append(Variant(value, history, time.monotonic() - started, model.uri))
    return variants, metric


def write_report(variants: list[Variant], param: str, metric: str, out_dir: str, title: str) -> dict[str, str]:
    os.makedirs(out_dir, exist_ok=True)
    panels = [m for m in (f"val_{metric}", "val_loss") if any(m in v.history for v in variants)]
    plot_path = os.path.join(out_dir, "comparison.png")
    plot_overlaid([(f"{param}={v.value}", v.history) for v in variants], panels or ["loss"], plot_path, title, dpi=90)

    higher = _higher_is_better(metric)
    rows = []
    for v in variants:
        series = v.history.get(f"val_{metric}") or v.history.get(metric) or [float("nan")]
        losses = v.history.get("val_loss") or v.history.get("loss") or [float("nan")]
        rows.append(
            {
                param: v.value,
                "epochs": len(v.history.get("loss", [])),
                f"best val {metric}": _best(series, higher),
                f"final val {metric}": series[-1],
                "best val loss": min(losses),
                "seconds": round(v.seconds, 1),
                "trained model": v.model_uri,  # not "model": a pipeline may vary a parameter of that name
            }
        )
    table_path = os.path.join(out_dir, "comparison.md")
    columns = list(rows[0])
    with open(table_path, "w") as f:
        f.write(f"# {title}\n\n| " + " | ".join(columns) + " |\n|" + "---|" * len(columns) + "\n")
        for row in rows:
            f.write(
                "| "
                + " | ".join(f"{row[c]:.4f}" if isinstance(row[c], float) else str(row[c]) for c in columns)
                + " |\n"
            )
    with open(os.path.join(out_dir, "comparison.json"), "w") as f:
        json.dump(
            {"param": param, "metric": metric, "rows": rows, "histories": {v.value: v.history for v in variants}},
            f,
            indent=2,
        )
    return {"plot": plot_path, "table": table_path}


def report_dir(output_dir: str, pipeline_name: str, param: str) -> str:
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    return os.path.join(output_dir, pipeline_name, "compare", f"{param}-{stamp}")
