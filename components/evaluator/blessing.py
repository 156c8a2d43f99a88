"""The one decision of the Evaluator: bless or not, and why (in one line)."""

from __future__ import annotations

import os

from components.base import fileio
from serving import layout


def check_thresholds(metrics: dict, thresholds: dict) -> list[str]:
    failures = []
    for name, bound in thresholds.items():
        if name not in metrics:
            failures.append(f"{name} was not computed")
            continue
        value = metrics[name]
        if "min" in bound and value < bound["min"]:
            failures.append(f"{name} {value:.4f} < required {bound['min']}")
        if "max" in bound and value > bound["max"]:
            failures.append(f"{name} {value:.4f} > allowed {bound['max']}")
        if "max_metric" in bound:
            limit = metrics.get(bound["max_metric"])
            if limit is None:
                failures.append(f"{bound['max_metric']} was not computed")
            elif value > limit:
                failures.append(f"{name} {value:.4f} > {bound['max_metric']} {limit:.4f}")
    return failures


def compare_to_baseline(
    candidate: float, baseline: float, metric: str, higher_is_better: bool, tolerance: float
) -> str | None:
    """A reason when the candidate is worse than the baseline by more than `tolerance` (relative)."""
    if higher_is_better:
        floor = baseline - abs(baseline) * tolerance
        if candidate < floor:
            return f"{metric} {candidate:.4f} is worse than the published model's {baseline:.4f} (tolerance {tolerance:.1%})"
    else:
        ceiling = baseline + abs(baseline) * tolerance
        if candidate > ceiling:
            return f"{metric} {candidate:.4f} is worse than the published model's {baseline:.4f} (tolerance {tolerance:.1%})"
    return None


def latest_version_dir(model_base_path: str | None) -> str | None:
    """The highest integer version under a TF-Serving model base path that holds a SavedModel."""
    if not model_base_path or not fileio.isdir(model_base_path):
        return None
    complete = [
        v
        for v in layout.versions(fileio.listdir(model_base_path))
        if fileio.exists(os.path.join(layout.version_dir(model_base_path, v), layout.SAVED_MODEL_FILES[0]))
    ]
    return layout.version_dir(model_base_path, max(complete)) if complete else None
