"""Captcha metrics through the exported model: full-string and per-character accuracy,
sliced per character position and per true character; the confusion pairs; how well the
confidence is calibrated and how the model's `accepted` answers fare."""

from __future__ import annotations

import collections
import glob

import numpy as np
import tensorflow as tf

from components.evaluator.calibration import reliability
from pipelines.captcha.preprocessing import LABEL_KEY

MAX_MISREAD = 50  # misread examples listed in the report (and drawn in its gallery)


def evaluate(saved_model_dir: str, examples_artifact, split: str, batch_size: int = 128) -> dict:
    files = sorted(glob.glob(examples_artifact.split_files(split)))
    if not files:
        raise ValueError(f"no {split} examples to evaluate on")
    serve = tf.saved_model.load(saved_model_dir).signatures["serving_tf_example"]
    label_spec = {LABEL_KEY: tf.io.FixedLenFeature([1], tf.string)}
    answers = Answers()
    for batch in tf.data.TFRecordDataset(files, compression_type="GZIP").batch(batch_size):
        truths = [t.decode() for t in tf.io.parse_example(batch, label_spec)[LABEL_KEY].numpy().ravel()]
        answers.add(truths, serve(examples=batch))
    return answers.score()


class Answers:
    """A served model's answers gathered batch by batch (text, confidence and, when the export has
    one, the `accepted` flag), scored against the true texts at the end."""

    def __init__(self) -> None:
        self.truths: list[str] = []
        self.texts: list[str] = []
        self.confidences: list[float] = []
        self.accepted: list[bool] = []

    def add(self, truths: list[str], outputs: dict) -> None:
        self.truths += truths
        self.texts += [t.decode() for t in outputs["text"].numpy()]
        self.confidences += outputs["confidence"].numpy().tolist()
        if "accepted" in outputs:  # models exported before calibration have none
            self.accepted += outputs["accepted"].numpy().tolist()

    def score(self) -> dict:
        return score(self.truths, self.texts, self.confidences, self.accepted or None)


def score(truths: list[str], texts: list[str], confidences: list[float], accepted: list[bool] | None = None) -> dict:
    """The metrics report of answers `texts` (with their confidences) to labels `truths`."""
    if not truths:
        raise ValueError("no answers to score")
    position_right: collections.Counter = collections.Counter()
    char_right: collections.Counter = collections.Counter()
    char_seen: collections.Counter = collections.Counter()
    confusions: collections.Counter = collections.Counter()
    pairs: collections.Counter = collections.Counter()  # (true, read) per character, right ones included
    for true_text, text in zip(truths, texts):
        for position, true_char in enumerate(true_text):
            hit = position < len(text) and text[position] == true_char
            if position < len(text):
                pairs[true_char, text[position]] += 1
            position_right[position] += hit
            char_right[true_char] += hit
            char_seen[true_char] += 1
            if not hit and position < len(text):
                confusions[f"{true_char}->{text[position]}"] += 1
    right = np.array([t == x for t, x in zip(truths, texts)])
    total, length = len(truths), max(position_right) + 1
    overall = {
        "full_string_accuracy": float(right.mean()),
        "character_accuracy": sum(char_right.values()) / sum(char_seen.values()),
        "mean_confidence": float(np.mean(confidences)),
        "num_examples": total,
    }
    calibration = reliability(np.array(confidences), right)
    overall["expected_calibration_error"] = calibration["ece"]
    if accepted is not None:
        taken = np.array(accepted, dtype=bool)
        overall["accepted_share"] = float(taken.mean())
        overall["accepted_accuracy"] = float(right[taken].mean()) if taken.any() else 0.0
    labels = sorted({c for pair in pairs for c in pair})
    misread = [
        {"index": i, "truth": truths[i], "answer": texts[i], "confidence": float(confidences[i])}
        for i in np.flatnonzero(~right)[:MAX_MISREAD].tolist()
    ]
    return {
        "overall": overall,
        "confusion_matrix": [[pairs[t, a] for a in labels] for t in labels],  # per character: rows truth
        "confusion_labels": labels,
        "misread": misread,  # the first MAX_MISREAD wrong answers, `index` in the split's file order
        "slices": {
            "position": {str(p): position_right[p] / total for p in range(length)},
            "true_character": {c: char_right[c] / char_seen[c] for c in sorted(char_seen)},
        },
        "confusions": dict(confusions.most_common(10)),  # "true->read": count, commonest first
        "calibration": calibration,
    }
