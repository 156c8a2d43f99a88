from __future__ import annotations

import json
import os

from components.base import BaseExecutor, fileio
from components.base.functions import load_function
from components.evaluator import calibration, charts
from components.evaluator.blessing import check_thresholds, compare_to_baseline, latest_version_dir
from components.evaluator.component import (
    BASELINE_DIR_KEY,
    BLESSING_KEY,
    COMPARISON_METRIC_KEY,
    EVALUATE_FN_KEY,
    EVALUATION_KEY,
    EXAMPLES_KEY,
    HIGHER_IS_BETTER_KEY,
    MODEL_KEY,
    SPLIT_KEY,
    THRESHOLDS_KEY,
    TOLERANCE_KEY,
)
from components.trainer.fn_args import SERVING_DIR

METRICS_FILE = "metrics.json"
RELIABILITY_FILE = "reliability.png"  # drawn when the evaluate_fn reports "calibration"
BLESSED_FILE, NOT_BLESSED_FILE = "BLESSED", "NOT_BLESSED"


class EvaluatorExecutor(BaseExecutor):
    """Scores a trained model and decides whether it may be published.

    Inputs: `examples` (the raw Examples; `split` is scored), `model` (the Trainer's Model: its
    `Format-Serving/` SavedModel). Outputs: `evaluation` (metrics.json: the candidate's and the
    published model's metrics; reliability.png when the metrics carry a calibration), `blessing`
    (BLESSED or NOT_BLESSED with the reason; property `blessed`). Parameters: `evaluate_fn`
    (module:function returning {"overall": ..., "slices": ...}), `thresholds` (JSON metric ->
    min / max / max_metric), `comparison_metric`, `higher_is_better` and `tolerance` (against the
    newest version in `baseline_dir`), `split`."""

    def _draw(self, report: dict, examples, split: str, out_dir: str) -> None:
        """The report's pictures: accuracy per slice (candidate beside the published model), the
        confusion matrix when the metrics carry one, and the misread examples' images."""
        candidate, baseline = report["candidate"], report["baseline"]
        charts.plot_slices(candidate, baseline, os.path.join(out_dir, charts.SLICES_FILE), f"The {split} split, sliced")
        if candidate.get("confusion_matrix"):
            labels = candidate.get("confusion_labels") or [str(i) for i in range(len(candidate["confusion_matrix"]))]
            charts.plot_confusion(
                candidate["confusion_matrix"],
                labels,
                os.path.join(out_dir, charts.CONFUSION_FILE),
                f"Confusion matrix on the {split} split",
            )
        residuals = candidate.get("residuals")
        if residuals:
            charts.plot_residuals(
                residuals["truth"],
                residuals["predicted"],
                os.path.join(out_dir, charts.RESIDUALS_FILE),
                f"Residuals on the {split} split",
                residuals.get("baseline"),
            )
        if candidate.get("misread"):
            charts.write_misread(examples, split, candidate["misread"], os.path.join(out_dir, charts.MISREAD_DIR))

    def Do(self, input_dict, output_dict, exec_properties):
        [examples] = input_dict[EXAMPLES_KEY]
        [model] = input_dict[MODEL_KEY]
        [evaluation] = output_dict[EVALUATION_KEY]
        [blessing] = output_dict[BLESSING_KEY]
        split = exec_properties[SPLIT_KEY]
        if split not in examples.split_names:
            raise ValueError(f"split {split!r} is not in the examples ({examples.split_names})")
        evaluate = load_function(exec_properties[EVALUATE_FN_KEY])
        candidate = evaluate(os.path.join(model.uri, SERVING_DIR), examples, split)
        metrics = candidate["overall"]
        report = {"split": split, "candidate": candidate, "baseline": None}

        reasons = check_thresholds(metrics, json.loads(exec_properties[THRESHOLDS_KEY] or "{}"))
        baseline_dir = latest_version_dir(exec_properties[BASELINE_DIR_KEY])
        if baseline_dir is not None:
            name = exec_properties[COMPARISON_METRIC_KEY]
            try:
                baseline = evaluate(baseline_dir, examples, split)
            except Exception as error:  # noqa: BLE001 - a published model that no longer loads is no bar
                self.log.warning("published model %s could not be evaluated: %s", baseline_dir, error)
                baseline = None
            if baseline is not None:
                report["baseline"] = {"path": baseline_dir, **baseline}
                reason = compare_to_baseline(
                    metrics[name],
                    baseline["overall"][name],
                    name,
                    exec_properties[HIGHER_IS_BETTER_KEY],
                    exec_properties[TOLERANCE_KEY],
                )
                if reason:
                    reasons.append(reason)

        blessed = not reasons
        reason = "meets every threshold" if blessed else "; ".join(reasons)
        if blessed and baseline_dir is not None and report["baseline"] is not None:
            reason += f" and is not worse than {baseline_dir}"
        with fileio.open(os.path.join(evaluation.uri, METRICS_FILE), "w") as f:
            json.dump(report, f, indent=2)
        if "calibration" in candidate:
            calibration.plot_reliability(
                candidate["calibration"],
                os.path.join(evaluation.uri, RELIABILITY_FILE),
                f"Reliability on the {split} split",
            )
        self._draw(report, examples, split, evaluation.uri)
        with fileio.open(os.path.join(blessing.uri, BLESSED_FILE if blessed else NOT_BLESSED_FILE), "w") as f:
            f.write(reason + "\n")
        blessing.set("blessed", int(blessed))
        blessing.set("reason", reason)
        for key, value in metrics.items():
            if isinstance(value, (int, float)):
                evaluation.properties[key] = float(value)
