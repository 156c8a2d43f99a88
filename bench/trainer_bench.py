"""Trainer input pipeline: training images/s fed by tf.data from the transformed TFRecords
against the same model fed from in-memory tensors, in the same run.

    python -m bench.trainer_bench [--examples N] [--epochs E]
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
import time

from bench.common import print_table, record


class EpochTimer:
    def __new__(cls):
        import tf_keras as keras

        class _Timer(keras.callbacks.Callback):
            def on_train_begin(self, logs=None):
                self.seconds = []

            def on_epoch_begin(self, epoch, logs=None):
                self.started = time.perf_counter()

            def on_epoch_end(self, epoch, logs=None):
                self.seconds.append(time.perf_counter() - self.started)

        return _Timer()


def transformed_data(n: int, root: str):
    from pipelines.metadata import MetadataStore, sqlite_config
    from pipelines.registry import PIPELINES, RunOptions
    from pipelines.runner import LocalRunner

    pipeline = PIPELINES["captcha"].create(RunOptions(params={"num_examples": str(n)})).up_to("Transform")
    store = MetadataStore(sqlite_config(os.path.join(root, "m.sqlite")))
    result = LocalRunner(store, root, out=io.StringIO()).run(pipeline)
    return result.outputs("Transform", "transformed_examples")[0], result.outputs("Transform", "transform_graph")[0]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--examples", type=int, default=6000)
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args(argv)

    import numpy as np
    import tensorflow as tf
    import tensorflow_transform as tft

    from pipelines.captcha.model import CaptchaTrainConfig, build_model, compile_model, make_dataset

    with tempfile.TemporaryDirectory() as tmp:
        examples, graph = transformed_data(args.examples, tmp)
        spec = tft.TFTransformOutput(graph.uri).transformed_feature_spec()
        pattern = examples.split_files("train")
        rows = []

        def fit(label, dataset_or_arrays, config, n_images):
            tf.keras.utils.set_random_seed(1)
            model = build_model(spec["image"].shape, config)
            compile_model(model, config, 100)
            timer = EpochTimer()
            if isinstance(dataset_or_arrays, tuple):
                x, y = dataset_or_arrays
                model.fit(
                    x, y, batch_size=config.batch_size, epochs=args.epochs, shuffle=True, callbacks=[timer], verbose=0
                )
            else:
                model.fit(dataset_or_arrays, epochs=args.epochs, callbacks=[timer], verbose=0)
            steady = timer.seconds[1:] or timer.seconds  # epoch 1 also fills the cache and traces the graph
            rate = n_images * len(steady) / sum(steady)
            rows.append(
                {"input": label, "images/epoch": n_images, "first epoch s": timer.seconds[0], "steady img/s": rate}
            )
            return rate

        plain = CaptchaTrainConfig(augment=False)
        in_memory_x, in_memory_y = [], []
        for x, y in make_dataset(pattern, spec, plain, training=False):
            in_memory_x.append(x.numpy())
            in_memory_y.append(y.numpy())
        x, y = np.concatenate(in_memory_x), np.concatenate(in_memory_y)
        n = len(y)
        base = fit("in-memory numpy tensors (baseline)", (x, y), plain, n)
        tfdata = fit(
            "tf.data from gzip TFRecords (parse, cache, shuffle, prefetch)",
            make_dataset(pattern, spec, plain, True),
            plain,
            n,
        )
        augmented = CaptchaTrainConfig(augment=True)
        fit(
            "tf.data from TFRecords + augmentation (the pipeline's setting)",
            make_dataset(pattern, spec, augmented, True),
            augmented,
            n,
        )
        for row in rows:
            row["vs baseline"] = row["steady img/s"] / base
    print_table(f"Trainer input: tf.data vs in-memory ({n} train images, {args.epochs} epochs)", rows)
    record("trainer_input", rows)
    return 0 if tfdata >= 0.9 * base else 1


if __name__ == "__main__":
    sys.exit(main())
