"""Captcha metrics through the exported model: full-string and per-character accuracy,
sliced per character position and per true character."""
from __future__ import annotations

import collections
import glob
import os

import tensorflow as tf

from pipelines.captcha.preprocessing import IMAGE_KEY, LABEL_KEY


def evaluate(saved_model_dir: str, examples_artifact, split: str, batch_size: int = 128) -> dict:
    files = sorted(glob.glob(os.path.join(examples_artifact.split_uri(split), "*")))
    if not files:
        raise ValueError(f"no {split} examples to evaluate on")
    serve = tf.saved_model.load(saved_model_dir).signatures["serving_tf_example"]
    label_spec = {LABEL_KEY: tf.io.FixedLenFeature([1], tf.string)}
    right_strings = total = 0
    position_right: collections.Counter = collections.Counter()
    char_right: collections.Counter = collections.Counter()
    char_seen: collections.Counter = collections.Counter()
    confidences = []
    for batch in tf.data.TFRecordDataset(files, compression_type="GZIP").batch(batch_size):
        truth = [t.decode() for t in tf.io.parse_example(batch, label_spec)[LABEL_KEY].numpy().ravel()]
        outputs = serve(examples=batch)
        predicted = [t.decode() for t in outputs["text"].numpy()]
        confidences.extend(outputs["confidence"].numpy().tolist())
        for true_text, text in zip(truth, predicted):
            total += 1
            right_strings += true_text == text
            for position, true_char in enumerate(true_text):
                hit = position < len(text) and text[position] == true_char
                position_right[position] += hit
                char_right[true_char] += hit
                char_seen[true_char] += 1
    length = max(position_right) + 1 if position_right else 0
    characters = sum(char_seen.values())
    return {
        "overall": {
            "full_string_accuracy": right_strings / total,
            "character_accuracy": sum(char_right.values()) / characters,
            "mean_confidence": sum(confidences) / len(confidences),
            "num_examples": total,
        },
        "slices": {
            "position": {str(p): position_right[p] / total for p in range(length)},
            "true_character": {c: char_right[c] / char_seen[c] for c in sorted(char_seen)},
        },
    }
