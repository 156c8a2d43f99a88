"""MNIST metrics through the exported `classify` signature (serialized tf.Example in, as TF
Serving's Classify API calls it): accuracy, per-digit accuracy, the confusion matrix, the
commonest confusions and the misread examples (their keys, truth, answer and confidence)."""

from __future__ import annotations

import glob

import numpy as np
import tensorflow as tf

from pipelines.mnist.preprocessing import LABEL_KEY

MAX_MISREAD = 50  # misread examples listed in the report


def evaluate(saved_model_dir: str, examples_artifact, split: str, batch_size: int = 256) -> dict:
    files = sorted(glob.glob(examples_artifact.split_files(split)))
    if not files:
        raise ValueError(f"no {split} examples to evaluate on")
    classify = tf.saved_model.load(saved_model_dir).signatures["classify"]
    spec = {LABEL_KEY: tf.io.FixedLenFeature([1], tf.string)}
    truths, answers, confidences = [], [], []
    for batch in tf.data.TFRecordDataset(files, compression_type="GZIP").batch(batch_size):
        truths += [t.decode().strip() for t in tf.io.parse_example(batch, spec)[LABEL_KEY].numpy().ravel()]
        outputs = classify(inputs=batch)
        answers += [c.decode() for c in outputs["classes"].numpy()[:, 0]]
        confidences += outputs["scores"].numpy()[:, 0].tolist()
    return score(truths, answers, confidences)


def score(truths: list[str], answers: list[str], confidences: list[float]) -> dict:
    """The report of digit `answers` (with their confidences) to labels `truths`."""
    if not truths:
        raise ValueError("no answers to score")
    truth = np.array([int(t) if t.isdigit() and len(t) == 1 else -1 for t in truths])
    answer = np.array([int(a) for a in answers])
    right = truth == answer
    matrix = np.zeros([10, 10], np.int64)
    for t, a in zip(truth, answer):
        if t >= 0:
            matrix[t, a] += 1
    confusions = {f"{t}->{a}": int(matrix[t, a]) for t in range(10) for a in range(10) if t != a and matrix[t, a]}
    misread = [
        {"index": int(i), "truth": truths[i], "answer": answers[i], "confidence": float(confidences[i])}
        for i in np.flatnonzero(~right)[:MAX_MISREAD]
    ]
    return {
        "overall": {
            "accuracy": float(right.mean()),
            "mean_confidence": float(np.mean(confidences)),
            "num_examples": len(truths),
        },
        "slices": {
            "true_digit": {str(d): float(right[truth == d].mean()) for d in range(10) if (truth == d).any()},
        },
        "confusion_matrix": matrix.tolist(),  # rows: truth 0-9, columns: answer 0-9
        "confusion_labels": [str(d) for d in range(10)],
        "confusions": dict(sorted(confusions.items(), key=lambda kv: -kv[1])[:10]),
        "misread": misread,
    }
