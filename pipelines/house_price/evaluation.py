"""House-price metrics through the exported `regress` signature, against the naive baseline
(always predicting the train split's mean price)."""

from __future__ import annotations

import glob

import numpy as np
import tensorflow as tf

from pipelines.house_price.preprocessing import LABEL_KEY


def _records(examples_artifact, split: str) -> list[bytes]:
    files = sorted(glob.glob(examples_artifact.split_files(split)))
    return [r.numpy() for r in tf.data.TFRecordDataset(files, compression_type="GZIP")] if files else []


def _prices(records: list[bytes]) -> np.ndarray:
    if not records:
        return np.zeros([0], np.float64)
    spec = {LABEL_KEY: tf.io.FixedLenFeature([1], tf.float32)}
    return tf.io.parse_example(tf.constant(records), spec)[LABEL_KEY].numpy().reshape(-1).astype(np.float64)


def evaluate(saved_model_dir: str, examples_artifact, split: str) -> dict:
    records = _records(examples_artifact, split)
    if not records:
        raise ValueError(f"no {split} examples to evaluate on")
    truth = _prices(records)
    regress = tf.saved_model.load(saved_model_dir).signatures["regress"]
    predicted = regress(inputs=tf.constant(records))["outputs"].numpy().reshape(-1).astype(np.float64)
    train_mean = float(_prices(_records(examples_artifact, "train")).mean())
    errors = predicted - truth
    return {
        "overall": {
            "rmse": float(np.sqrt(np.mean(errors**2))),
            "mae": float(np.mean(np.abs(errors))),
            "baseline_rmse": float(np.sqrt(np.mean((train_mean - truth) ** 2))),
            "num_examples": len(truth),
        },
        "slices": {},
        # Drawn by the Evaluator against the price (residuals.png), the naive baseline beside them.
        "residuals": {"truth": truth.tolist(), "predicted": predicted.tolist(), "baseline": train_mean},
    }
