"""Reading pipeline runs from ML Metadata and the served models from models.config, for the pages."""

from __future__ import annotations

import json
import os

from google.protobuf import text_format

from serving import layout
from serving.frontend.config import FrontendConfig


class RunsUnavailable(RuntimeError):
    """This installation cannot read ML Metadata (the frontend's container installs no pipeline code)."""


def _parse_text_proto(text: str) -> list:
    """A text-format message as nested [(field, value or [...]), ...], without its descriptor, using
    protobuf's own tokenizer: the frontend's container has no TensorFlow, whose protos
    ModelServerConfig imports."""
    tokens = text_format.Tokenizer(text.splitlines())

    def message(closing: str | None) -> list:
        fields = []
        while not (tokens.AtEnd() if closing is None else tokens.TryConsume(closing)):
            name = tokens.ConsumeIdentifier()
            tokens.TryConsume(":")
            if tokens.TryConsume("{"):
                fields.append((name, message("}")))
            elif tokens.TryConsume("<"):
                fields.append((name, message(">")))
            elif tokens.token[:1] in "\"'":
                fields.append((name, tokens.ConsumeString()))
            else:  # a number or an enum name, kept as its text
                fields.append((name, tokens.token))
                tokens.NextToken()
            tokens.TryConsume(",") or tokens.TryConsume(";")
        return fields

    return message(None)


def _model_configs(path: str) -> list[list]:
    """The `config` entries of a ModelServerConfig text file's model_config_list, as parsed fields."""
    with open(path, encoding="utf-8") as f:
        parsed = _parse_text_proto(f.read())
    return [
        entry
        for key, model_list in parsed
        if key == "model_config_list"
        for entry_key, entry in model_list
        if entry_key == "config"
    ]


def _scalars(entry: list) -> dict:
    return {k: v for k, v in entry if not isinstance(v, list)}


def read_base_paths(path: str) -> dict[str, str]:
    """{model name: base path} from a ModelServerConfig text file."""
    found = {}
    for entry in _model_configs(path):
        fields = _scalars(entry)
        if "name" in fields and "base_path" in fields:
            found[fields["name"]] = fields["base_path"]
    return found


def read_models_config(path: str) -> dict[str, dict[str, int]]:
    """{model name: {label: version}} from a ModelServerConfig text file."""
    return {
        _scalars(entry)["name"]: {dict(v)["key"]: int(dict(v)["value"]) for k, v in entry if k == "version_labels"}
        for entry in _model_configs(path)
    }


def configured_models(config: FrontendConfig) -> dict[str, dict[str, int]]:
    """{model name: {label: version}} from models.config; the demo's own models when there is none."""
    try:
        found = read_models_config(config.models_config)
        if found:
            return found
    except (OSError, text_format.ParseError, KeyError, ValueError):
        pass
    return {config.captcha_model: {}, config.house_price_model: {}, config.mnist_model: {}}


def _file_stamp(path: str) -> tuple:
    """What changes when SQLite writes a database: the file's and its journals' sizes and times."""
    stamp = []
    for name in (path, path + "-wal", path + "-journal"):
        try:
            st = os.stat(name)
            stamp.append((st.st_mtime_ns, st.st_size))
        except OSError:
            stamp.append(None)
    return tuple(stamp)


# The models page refreshes every 5 s in every open browser; reading every run of every pipeline from
# ML Metadata each time is wasted while nothing was written. Keyed by the store's file stamp.
_PUSHES_SEEN: dict[str, tuple[tuple, dict[str, dict]]] = {}


def _pushes(metadata_path: str) -> dict[str, dict]:
    """{pushed version folder: the run that pushed it and its evaluation's overall metrics}, from ML
    Metadata; read again only when the store's file has changed."""
    stamp = _file_stamp(metadata_path)
    seen = _PUSHES_SEEN.get(metadata_path)
    if seen is not None and seen[0] == stamp:
        return seen[1]
    found = _read_pushes(metadata_path)
    _PUSHES_SEEN[metadata_path] = (stamp, found)
    return found


def _read_pushes(metadata_path: str) -> dict[str, dict]:
    try:
        store = _store(metadata_path)
    except RunsUnavailable:
        return {}
    found: dict[str, dict] = {}
    for pipeline in store.pipeline_names() if store is not None else []:
        for run in store.runs(pipeline):
            outputs = [artifact for execution in run.executions for _key, artifact in execution.outputs]
            destination = next(
                (
                    a.properties.get("pushed_destination")
                    for a in outputs
                    if a.type_name == "PushedModel"
                    and a.properties.get("pushed")
                    and a.properties.get("pushed_destination")
                ),
                None,
            )
            if not destination or os.path.abspath(destination) in found:
                continue  # the first run that pushed a version made it; later cache hits only repeat it
            evaluation = next((a for a in outputs if a.type_name == "ModelEvaluation"), None)
            metrics = _read_json(os.path.join(evaluation.uri, "metrics.json")) if evaluation is not None else None
            overall = (metrics or {}).get("candidate", {}).get("overall", {})
            found[os.path.abspath(destination)] = {
                "pipeline": pipeline,
                "run_id": run.id,
                "run_name": run.name,
                "metrics": {k: v for k, v in overall.items() if isinstance(v, float)},
            }
    return found


_SIZES_SEEN: dict[tuple[str, int], float] = {}  # (version folder, its mtime): megabytes


def _megabytes(folder: str) -> float:
    """A version folder's size. The Pusher renames a finished version into place and nothing writes
    into it afterwards, so the walk is done once per folder (and again if it is replaced)."""
    try:
        key = (folder, os.stat(folder).st_mtime_ns)
    except OSError:
        return 0.0
    if key not in _SIZES_SEEN:
        files = [os.path.join(root, f) for root, _, names in os.walk(folder) for f in names]
        _SIZES_SEEN[key] = sum(os.path.getsize(f) for f in files if os.path.isfile(f)) / 1e6
    return _SIZES_SEEN[key]


def model_history(config: FrontendConfig, served: dict[str, list[int]]) -> dict[str, list[dict]]:
    """Every version on disk of every model in models.config, newest first: when it was pushed, its
    size, the run that pushed it (with that run's metrics) and whether the server serves it."""
    try:
        base_paths = read_base_paths(config.models_config)
    except (OSError, text_format.ParseError):
        return {}
    pushes = _pushes(config.metadata_path)
    history = {}
    for name, base_path in base_paths.items():
        rows = []
        for version in reversed(layout.local_versions(base_path)):
            folder = layout.version_dir(base_path, version)
            marker = next(
                (os.path.join(folder, m) for m in layout.SAVED_MODEL_FILES if os.path.exists(os.path.join(folder, m))),
                None,
            )
            rows.append(
                {
                    "version": version,
                    "pushed_at": os.path.getmtime(marker) if marker else None,
                    "megabytes": _megabytes(folder),
                    "run": pushes.get(os.path.abspath(folder)),
                    "served": version in served.get(name, []),
                }
            )
        history[name] = rows
    return history


def compare(metadata_path: str, pipeline: str, runs: list[str]) -> dict:
    """What the compare page shows: the runs, the parameters that differ, metrics, the curves (data: URL)."""
    import base64
    import io

    store = _store(metadata_path)
    if store is None:
        raise ValueError(f"no runs recorded in {metadata_path}")
    from pipelines import compare_runs

    views = compare_runs.collect(store, pipeline, runs)
    buffer = io.BytesIO()
    compare_runs.plot_curves(views, buffer)
    return {
        "runs": views,
        "differing": compare_runs.differing_parameters(views),
        "metrics": compare_runs.metric_rows(views),
        "curves": "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii"),
    }


def _store(metadata_path: str):
    if not os.path.exists(metadata_path):
        return None
    try:
        from pipelines.metadata import MetadataStore, StoreUnreadable, sqlite_config
    except ImportError as error:
        raise RunsUnavailable(f"pipeline runs cannot be read here: {error.name} is not installed") from None
    try:
        return MetadataStore(sqlite_config(metadata_path))
    except StoreUnreadable as error:
        raise RunsUnavailable(str(error)) from None


def _summary(run) -> dict:
    states = [e.state for e in run.executions]
    return {
        "id": run.id,
        "name": run.name,
        "started": run.create_time,
        "status": next((s for s in ("FAILED", "ABANDONED", "RUNNING") if s in states), "COMPLETE"),
        "components": [
            {
                "component": e.component_id,
                "state": e.state,
                "seconds": e.duration,
                "cached": e.state == "CACHED",
                "execution": e.id,
            }
            for e in run.executions
        ],
    }


def latest_runs(metadata_path: str, per_pipeline: int = 5) -> dict[str, list[dict]]:
    store = _store(metadata_path)
    if store is None:
        return {}
    found = {}
    for pipeline in store.pipeline_names():
        runs = store.runs(pipeline)
        if runs:
            found[pipeline] = [_summary(r) for r in reversed(runs[-per_pipeline:])]
    return found


def _relative(uri: str, runs_dir: str) -> str | None:
    """The artifact path relative to the runs directory, when it lies inside it (what /artifacts serves)."""
    root = os.path.abspath(runs_dir)
    path = os.path.abspath(uri)
    return os.path.relpath(path, root) if path.startswith(root + os.sep) else None


def _read_json(path: str):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


# The ExampleValidator's picture (components/example_validator/drift_chart.py; not imported: the
# frontend installs no TensorFlow Metadata).
DRIFT_CHART = "drift.png"

# The Evaluator's pictures (components/evaluator/charts.py, calibration.py), as the run page titles them.
EVALUATION_CHARTS = (
    ("slices.png", "Accuracy per slice"),
    ("confusion.png", "Confusion matrix"),
    ("residuals.png", "Residuals against the true value"),
    ("reliability.png", "Confidence calibration"),
)


def _comparison(metrics: dict | None) -> list[tuple[str, float | None, float | None]]:
    """(metric, this model, the published model) rows of the Evaluator's overall metrics."""
    if not metrics or not isinstance(metrics.get("candidate"), dict):
        return []
    ours = metrics["candidate"].get("overall", {})
    theirs = (metrics.get("baseline") or {}).get("overall", {})
    return [(name, value, theirs.get(name)) for name, value in ours.items() if isinstance(value, (int, float))]


def run_details(metadata_path: str, pipeline: str, run_id: int, runs_dir: str) -> dict | None:
    store = _store(metadata_path)
    if store is None or pipeline not in store.pipeline_names():
        return None
    run = next((r for r in store.runs(pipeline) if r.id == run_id), None)
    if run is None:
        return None
    details = _summary(run)
    links, anomalies, metrics, blessing, pushed = [], {}, None, None, None
    charts, gallery = [], []
    for execution in run.executions:
        for _key, artifact in execution.outputs:
            uri = artifact.uri
            if artifact.type_name == "ExampleStatistics" and os.path.exists(os.path.join(uri, "statistics.html")):
                links.append(("Data statistics (TFDV)", _relative(os.path.join(uri, "statistics.html"), runs_dir)))
            elif artifact.type_name == "ExampleAnomalies":
                if os.path.exists(os.path.join(uri, "statistics.html")):
                    checked = _relative(os.path.join(uri, "statistics.html"), runs_dir)
                    links.append(("Statistics checked against the schema (anomalies, drift)", checked))
                if os.path.exists(os.path.join(uri, DRIFT_CHART)):
                    charts.append(
                        ("Drift against the training split", _relative(os.path.join(uri, DRIFT_CHART), runs_dir))
                    )
                for split in sorted(os.listdir(uri)) if os.path.isdir(uri) else []:
                    found = _read_json(os.path.join(uri, split, "anomalies.json"))
                    if found is not None:
                        anomalies[split.replace("Split-", "")] = found
            elif artifact.type_name == "Model" and os.path.exists(os.path.join(uri, "curves.png")):
                links.append(("Training curves", _relative(os.path.join(uri, "curves.png"), runs_dir)))
            elif artifact.type_name == "ModelEvaluation":
                metrics = _read_json(os.path.join(uri, "metrics.json"))
                for name, title in EVALUATION_CHARTS:
                    if os.path.exists(os.path.join(uri, name)):
                        charts.append((title, _relative(os.path.join(uri, name), runs_dir)))
                for item in _read_json(os.path.join(uri, "misread", "misread.json")) or []:
                    path = _relative(os.path.join(uri, "misread", item.get("file", "")), runs_dir)
                    if path and item.get("file"):
                        gallery.append({**item, "path": path})
            elif artifact.type_name == "ModelBlessing":
                blessing = {
                    "blessed": bool(artifact.properties.get("blessed")),
                    "reason": artifact.properties.get("reason", ""),
                }
            elif artifact.type_name == "PushedModel":
                pushed = {
                    "pushed": bool(artifact.properties.get("pushed")),
                    "version": artifact.properties.get("pushed_version"),
                    "destination": artifact.properties.get("pushed_destination"),
                }
    details.update(
        links=[(title, path) for title, path in links + charts if path],
        charts=[(title, path) for title, path in charts if path],
        gallery=gallery,
        comparison=_comparison(metrics),
        anomalies=anomalies,
        metrics=metrics,
        blessing=blessing,
        pushed=pushed,
        errors=[(e.component_id, e.error_line) for e in run.executions if e.error],
    )
    return details
