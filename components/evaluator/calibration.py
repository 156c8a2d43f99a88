"""A confidence users can act on: a temperature fitted on held-out data, the confidence under
which an answer is withheld, and how far confidences are from the accuracy they claim.

A softmax trained to low loss is over- or under-confident by a roughly constant factor on
its logits; dividing the log-probabilities by one temperature T, fitted to minimise the
negative log-likelihood of held-out labels (Guo et al. 2017, "On Calibration of Modern
Neural Networks"), fixes most of it without changing any answer. The rejection threshold is
then chosen on the same held-out data: the lowest confidence at which the answers at or
above it are right at least `target` of the time, with 95% confidence (a lower bound of their
precision, not the precision they happened to reach, must reach the target).
"""

from __future__ import annotations

from statistics import NormalDist

import numpy as np

from components.base import fileio

NEVER = 2.0  # a threshold no confidence reaches: nothing is accepted
_EPS = 1e-7


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def apply_temperature(probabilities: np.ndarray, temperature: float) -> np.ndarray:
    """softmax(log(p) / T) over the last axis: the same argmax, sharper (T < 1) or softer (T > 1)."""
    return np.exp(_log_softmax(np.log(np.clip(probabilities, _EPS, 1.0)) / temperature))


def negative_log_likelihood(probabilities: np.ndarray, labels: np.ndarray, temperature: float) -> float:
    log_p = _log_softmax(np.log(np.clip(probabilities, _EPS, 1.0)) / temperature)
    return float(-np.take_along_axis(log_p, labels[..., None].astype(np.int64), axis=-1).mean())


def fit_temperature(probabilities: np.ndarray, labels: np.ndarray, low: float = 0.05, high: float = 20.0) -> float:
    """The T in [low, high] minimising held-out NLL: a log-spaced scan, then golden-section search
    around its best point (the NLL is smooth and, in log T, has one minimum in practice)."""
    if probabilities.shape[:-1] != labels.shape or len(labels) == 0:
        raise ValueError(f"probabilities {probabilities.shape} and labels {labels.shape} do not match")
    grid = np.unique(np.append(np.geomspace(low, high, 41), 1.0))
    losses = [negative_log_likelihood(probabilities, labels, t) for t in grid]
    best = int(np.argmin(losses))
    a, b = np.log(grid[max(best - 1, 0)]), np.log(grid[min(best + 1, len(grid) - 1)])
    ratio = (np.sqrt(5) - 1) / 2
    for _ in range(30):
        c, d = b - ratio * (b - a), a + ratio * (b - a)
        if negative_log_likelihood(probabilities, labels, np.exp(c)) < negative_log_likelihood(
            probabilities, labels, np.exp(d)
        ):
            b = d
        else:
            a = c
    refined = float(np.exp((a + b) / 2))
    # Never worse than the scan's best (which includes T = 1: no change).
    return refined if negative_log_likelihood(probabilities, labels, refined) <= losses[best] else float(grid[best])


def precision_lower_bound(right: np.ndarray | float, total: np.ndarray | float, level: float) -> np.ndarray:
    """The one-sided Wilson score lower bound, at confidence `level`, of a precision measured as
    `right` of `total` answers (elementwise); level 0.5 gives the measured precision itself."""
    if not 0.5 <= level < 1:
        raise ValueError(f"level must be within [0.5, 1), got {level}")
    z = NormalDist().inv_cdf(level)
    n = np.asarray(total, dtype=np.float64)
    p = np.asarray(right, dtype=np.float64) / n
    centre = p + z * z / (2 * n)
    spread = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return (centre - spread) / (1 + z * z / n)


def reject_threshold(
    confidences: np.ndarray,
    correct: np.ndarray,
    target: float = 0.995,
    min_accepted: int = 20,
    level: float = 0.95,
) -> float:
    """The lowest confidence t such that the answers with confidence >= t are right at least
    `target` of the time, counted over at least `min_accepted` answers; NEVER when no t does.

    "At least `target`" is asked of the precision's lower confidence bound at `level`
    (`precision_lower_bound`), not of the precision these answers happened to reach: the lowest t
    whose measured precision just reaches the target is, among all the t scanned, the one its
    sampling luck favoured most, and on answers it was not chosen on it fell short of the target
    about half the time (BENCHMARKS.md, issue #14). level 0.5 is that measured precision."""
    if not 0 < target <= 1:
        raise ValueError(f"target must be within (0, 1], got {target}")
    order = np.argsort(-confidences, kind="stable")
    sorted_conf, sorted_right = confidences[order], correct[order].astype(np.float64)
    counted = np.arange(1, len(sorted_right) + 1)
    precision = precision_lower_bound(np.cumsum(sorted_right), counted, level)
    # Only cut between distinct confidences: ties are accepted or withheld together.
    last_of_value = np.append(sorted_conf[1:] != sorted_conf[:-1], True)
    ok = (precision >= target) & last_of_value & (counted >= min_accepted)
    if not ok.any():
        return NEVER
    return float(sorted_conf[np.nonzero(ok)[0].max()])


def reliability(confidences: np.ndarray, correct: np.ndarray, bins: int = 15) -> dict:
    """Expected calibration error (|accuracy - confidence| per equal-width confidence bin,
    weighted by the bin's share of answers) and the bins for a reliability diagram."""
    confidences = np.asarray(confidences, dtype=np.float64)
    correct = np.asarray(correct, dtype=np.float64)
    if len(confidences) == 0:
        raise ValueError("no answers to measure calibration on")
    edges = np.linspace(0.0, 1.0, bins + 1)
    index = np.clip(np.digitize(confidences, edges[1:-1], right=True), 0, bins - 1)
    rows, ece = [], 0.0
    for b in range(bins):
        members = index == b
        count = int(members.sum())
        if count:
            conf, acc = float(confidences[members].mean()), float(correct[members].mean())
            ece += count / len(confidences) * abs(acc - conf)
            rows.append(
                {
                    "low": float(edges[b]),
                    "high": float(edges[b + 1]),
                    "count": count,
                    "confidence": conf,
                    "accuracy": acc,
                }
            )
    return {"ece": ece, "bins": rows, "num_answers": int(len(confidences))}


def plot_reliability(report: dict, path: str, title: str) -> None:
    """The reliability diagram of `reliability()`: accuracy against confidence per bin, the
    diagonal for a perfectly calibrated model, bar widths by bin, answer counts beneath."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(5.5, 6), sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    for row in report["bins"]:
        width = row["high"] - row["low"]
        low, high = sorted((row["accuracy"], row["confidence"]))
        top.bar(row["low"], low, width=width, align="edge", color="#4C72B0", edgecolor="white")
        # The gap up to accuracy (under-confident) or up to confidence (over-confident).
        top.bar(
            row["low"],
            high - low,
            bottom=low,
            width=width,
            align="edge",
            color="#55A868" if row["accuracy"] > row["confidence"] else "#C44E52",
            alpha=0.6,
            edgecolor="white",
        )
        bottom.bar(row["low"], row["count"], width=width, align="edge", color="#8C8C8C")
    top.plot([0, 1], [0, 1], "k--", linewidth=1, label="perfectly calibrated")
    top.bar(0, 0, color="#C44E52", alpha=0.6, label="over-confident: confidence above accuracy")
    top.bar(0, 0, color="#55A868", alpha=0.6, label="under-confident: accuracy above confidence")
    top.set_ylabel("accuracy")
    top.set_ylim(0, 1)
    top.set_title(f"{title}\nECE {report['ece']:.4f} over {report['num_answers']} answers")
    top.legend(loc="upper left", fontsize=8)
    bottom.set_yscale("log")
    bottom.set_ylabel("answers")
    bottom.set_xlabel("confidence")
    bottom.set_xlim(0, 1)
    fig.tight_layout()
    with fileio.open(path, "wb") as f:
        fig.savefig(f, format="png", dpi=90)
    plt.close(fig)
