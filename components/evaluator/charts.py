"""The Evaluator's report as pictures and files people can read (issue #17): accuracy per slice,
candidate beside the published model; the confusion matrix; the misread examples themselves.

All drawn server-side with matplotlib (no JavaScript, no network) into the evaluation folder,
which the run page shows."""

from __future__ import annotations

import json
import os

from components.base import fileio

SLICES_FILE = "slices.png"
CONFUSION_FILE = "confusion.png"
RESIDUALS_FILE = "residuals.png"
MISREAD_DIR = "misread"  # <index>.<png|jpg> per misread example, and misread.json
MISREAD_FILE = "misread.json"
JPEG_MAGIC = b"\xff\xd8\xff"


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: str) -> None:
    with fileio.open(path, "wb") as f:
        fig.savefig(f, dpi=90, format="png")


def plot_slices(candidate: dict, baseline: dict | None, path: str, title: str) -> bool:
    """One horizontal bar chart per slice family (per position, per true character, per digit...):
    the candidate's value per slice, the published model's beside it. False when there are none."""
    families = {name: values for name, values in (candidate.get("slices") or {}).items() if values}
    if not families:
        return False
    plt = _pyplot()
    heights = [max(2.0, 0.28 * len(values) + 1.0) for values in families.values()]
    fig, axes = plt.subplots(
        len(families), 1, figsize=(7, sum(heights)), squeeze=False, gridspec_kw={"height_ratios": heights}
    )
    for ax, (name, values) in zip(axes[:, 0], families.items()):
        keys = list(values)
        positions = range(len(keys))
        theirs = (baseline or {}).get("slices", {}).get(name, {})
        width = 0.4 if theirs else 0.8
        ax.barh(
            [p + (width / 2 if theirs else 0) for p in positions],
            [values[k] for k in keys],
            height=width,
            color="#4C72B0",
            label="this model",
        )
        if theirs:
            ax.barh(
                [p - width / 2 for p in positions],
                [theirs.get(k, 0.0) for k in keys],
                height=width,
                color="#BBBBBB",
                label="published model",
            )
        ax.set_yticks(list(positions), keys)
        ax.invert_yaxis()
        low = min([values[k] for k in keys] + [theirs.get(k, 1.0) for k in keys])
        ax.set_xlim(max(0.0, min(low, 0.9) - 0.05), 1.0)
        ax.set_title(f"accuracy per {name.replace('_', ' ')}")
        ax.grid(axis="x", alpha=0.3)
        ax.legend(loc="lower right", fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    _save(fig, path)
    plt.close(fig)
    return True


def plot_confusion(matrix: list[list[int]], labels: list[str], path: str, title: str) -> None:
    """A heatmap of answer counts, truth in rows and answer in columns, each row scaled to its total
    (so rare classes are as visible as common ones), the counts written in the cells."""
    import numpy as np

    plt = _pyplot()
    counts = np.asarray(matrix, dtype=float)
    share = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(1 + 0.55 * len(labels), 0.8 + 0.5 * len(labels)))
    image = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    for (row, column), count in np.ndenumerate(counts):
        if count:
            ax.text(
                column,
                row,
                int(count),
                ha="center",
                va="center",
                fontsize=8,
                color="white" if share[row, column] > 0.5 else "black",
            )
    ax.set_xticks(range(len(labels)), labels)
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("answer")
    ax.set_ylabel("truth")
    ax.set_title(title)
    fig.colorbar(image, ax=ax, label="share of the row")
    fig.tight_layout()
    _save(fig, path)
    plt.close(fig)


def plot_residuals(
    truth: list[float], predicted: list[float], path: str, title: str, baseline: float | None = None
) -> None:
    """A regression's errors against the true value (predicted - truth), with the naive baseline's
    errors (always the train split's mean) for scale when given."""
    import numpy as np

    plt = _pyplot()
    truth_a, predicted_a = np.asarray(truth, float), np.asarray(predicted, float)
    fig, ax = plt.subplots(figsize=(6.5, 4))
    ax.axhline(0, color="black", linewidth=1)
    if baseline is not None:
        ax.scatter(truth_a, baseline - truth_a, s=12, color="#BBBBBB", label="naive baseline (train mean)")
    ax.scatter(truth_a, predicted_a - truth_a, s=14, color="#4C72B0", label="this model")
    ax.set_xlabel("true value")
    ax.set_ylabel("predicted - true")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    _save(fig, path)
    plt.close(fig)


def write_misread(
    examples_artifact, split: str, misread: list[dict], out_dir: str, feature: str = "image"
) -> list[dict]:
    """The misread examples' images (`feature` bytes of the split's records, `index` in file order)
    as files in `out_dir`, and misread.json listing them with truth, answer and confidence."""
    import tensorflow as tf

    wanted = {int(m["index"]): m for m in misread if "index" in m}
    fileio.makedirs(out_dir)
    written = []
    if wanted:
        files = sorted(fileio.glob(examples_artifact.split_files(split)))
        records = tf.data.TFRecordDataset(files, compression_type="GZIP") if files else []
        for index, record in enumerate(records):
            if index > max(wanted):
                break
            if index not in wanted:
                continue
            values = tf.train.Example.FromString(record.numpy()).features.feature[feature].bytes_list.value
            if not values:
                continue
            data = values[0]
            name = f"{index}.{'jpg' if data.startswith(JPEG_MAGIC) else 'png'}"
            with fileio.open(os.path.join(out_dir, name), "wb") as f:
                f.write(data)
            written.append({**wanted[index], "file": name})
    with fileio.open(os.path.join(out_dir, MISREAD_FILE), "w") as f:
        json.dump(written, f, indent=2)
    return written
