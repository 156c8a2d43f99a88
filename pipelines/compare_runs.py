"""`python -m pipelines compare-runs PIPELINE RUN RUN...`: runs side by side after the fact, from ML
Metadata: the parameters that differ, the metrics of their evaluations, their training curves
overlaid. The runs page does the same (/runs/<pipeline>/compare?run=ID&run=ID)."""

from __future__ import annotations

import dataclasses
import json
import os

from pipelines.metadata import MetadataStore


@dataclasses.dataclass
class RunView:
    id: int
    name: str
    parameters: dict[str, object]  # "Component.parameter[.field]" -> value
    metrics: dict[str, float]  # the Evaluator's overall metrics on its split
    history: dict[str, list[float]]  # the Trainer's history.json


def _flatten(component: str, parameters_json: str) -> dict[str, object]:
    try:
        recorded = json.loads(parameters_json)
        parameters, data = recorded.get("parameters", {}), recorded.get("data", {})
    except (ValueError, AttributeError):
        return {}
    # A data file's content fingerprint: the same path with other data in it shows as a difference.
    flat: dict[str, object] = {f"{component}.{name} (content)": digest for name, digest in data.items()}
    for name, value in parameters.items():
        nested = None
        if isinstance(value, str) and value.startswith("{"):
            try:
                nested = json.loads(value)  # train_config, preprocessing_params, thresholds: JSON objects
            except ValueError:
                nested = None
        if isinstance(nested, dict):
            flat.update({f"{component}.{name}.{k}": v for k, v in nested.items()})
        else:
            flat[f"{component}.{name}"] = value
    return flat


def _read_json(path: str):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def collect(store: MetadataStore, pipeline: str, runs: list[str]) -> list[RunView]:
    """The runs named by id or name (as `pipelines runs` and the runs page show them), in that order."""
    known = store.runs(pipeline)
    views = []
    for wanted in runs:
        run = next(
            (r for r in known if str(r.id) == str(wanted) or r.name == wanted or r.name.endswith(f".{wanted}")), None
        )
        if run is None:
            listed = ", ".join(f"{r.id} ({r.name})" for r in known[-5:]) or "none"
            raise ValueError(f"pipeline {pipeline!r} has no run {wanted!r}; the latest: {listed}")
        parameters, metrics, history = {}, {}, {}
        for execution in run.executions:
            parameters.update(_flatten(execution.component_id, execution.parameters))
            for _key, artifact in execution.outputs:
                if artifact.type_name == "ModelEvaluation":
                    report = _read_json(os.path.join(artifact.uri, "metrics.json")) or {}
                    overall = report.get("candidate", {}).get("overall", {})
                    metrics = {k: v for k, v in overall.items() if isinstance(v, (int, float))}
                elif artifact.type_name == "Model":
                    history = _read_json(os.path.join(artifact.uri, "history.json")) or {}
        views.append(RunView(run.id, run.name, parameters, metrics, history))
    return views


def differing_parameters(views: list[RunView]) -> list[tuple[str, list[object]]]:
    """(parameter, value per run) for every parameter whose value is not the same in all runs."""
    names = sorted({name for v in views for name in v.parameters})
    rows = []
    for name in names:
        values = [v.parameters.get(name, "-") for v in views]
        if len({json.dumps(value, sort_keys=True, default=str) for value in values}) > 1:
            rows.append((name, values))
    return rows


def metric_rows(views: list[RunView]) -> list[tuple[str, list[float | None]]]:
    names = sorted({name for v in views for name in v.metrics})
    return [(name, [v.metrics.get(name) for v in views]) for name in names]


def plot_curves(views: list[RunView], path_or_file, metric: str | None = None) -> None:
    """Validation loss and `metric` (the first validation metric the runs share) per epoch, one line per run."""
    shared = set.intersection(*(set(v.history) for v in views)) if views else set()
    if metric is None:
        metric = next((k for k in sorted(shared) if k.startswith("val_") and k != "val_loss"), None)
    panels = [k for k in ("val_loss", metric) if k and k in shared] or sorted(shared)[:1]
    plot_overlaid([(f"run {view.id}", view.history) for view in views], panels, path_or_file)


def plot_overlaid(
    histories: list[tuple[str, dict]], panels: list[str], path_or_file, title: str | None = None, dpi: int = 80
) -> None:
    """A panel per history key in `panels` (at least one), a line per (label, Keras history) in each:
    the curves of several trainings over their epochs, side by side (runs compared, a parameter swept)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, max(1, len(panels)), figsize=(6 * max(1, len(panels)), 4.5), squeeze=False)
    for ax, name in zip(axes[0], panels):
        for label, history in histories:
            series = history.get(name, [])
            ax.plot(range(1, len(series) + 1), series, marker="o", markersize=3, label=label)
        ax.set_title(name.replace("val_", "validation ").replace("_", " "))
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path_or_file, dpi=dpi, format="png")
    plt.close(fig)


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}" if isinstance(value, float) else str(value)


def report_text(pipeline: str, views: list[RunView]) -> str:
    """The comparison as Markdown: what differs, then the metrics."""
    header = "| | " + " | ".join(f"run {v.id} ({v.name})" for v in views) + " |\n|---|" + "---|" * len(views) + "\n"
    lines = [f"# {pipeline}: runs {', '.join(str(v.id) for v in views)}\n", "## Parameters that differ\n"]
    differ = differing_parameters(views)
    lines.append(
        header + "".join(f"| {n} | " + " | ".join(str(x) for x in vals) + " |\n" for n, vals in differ)
        if differ
        else "None: the runs had the same parameters.\n"
    )
    lines.append("\n## Metrics on the test split\n")
    rows = metric_rows(views)
    lines.append(
        header + "".join(f"| {n} | " + " | ".join(_number(x) for x in vals) + " |\n" for n, vals in rows)
        if rows
        else "No evaluation in these runs.\n"
    )
    return "".join(lines)
