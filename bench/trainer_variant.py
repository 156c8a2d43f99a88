"""Train one captcha-model variant on an existing Transform output and score it on the test split:
the Trainer's own input pipeline, model and callbacks, without re-running the data components.
`test` is Keras's evaluation of one view; `test_views` the full-string accuracy of the views the
export would serve (the config's test_time_shifts, combined by view_probabilities).

    python -m bench.trainer_variant --transform-dir runs/captcha/Transform/<id> --param batch_norm=true [--param k=v ...]

`--export DIR` also calibrates on the eval split and exports the model as the Trainer would, to
DIR, for `python -m bench.robustness --model DIR`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.trainer_variant")
    p.add_argument(
        "--transform-dir",
        required=True,
        help="a Transform execution's directory (transform_graph/ and transformed_examples/)",
    )
    p.add_argument("--param", action="append", default=[], help="a CaptchaTrainConfig field as key=value (repeatable)")
    p.add_argument("--export", metavar="DIR", help="calibrate and export the trained model here, as the Trainer does")
    args = p.parse_args(argv)
    if args.export and os.path.exists(args.export):
        p.error(f"--export {args.export} already exists")
    import tensorflow as tf
    import tensorflow_transform as tft

    from components.base import Examples
    from pipelines.captcha.model import (
        CaptchaTrainConfig,
        build_model,
        calibrate_and_export,
        compile_model,
        count_records,
        full_string_accuracy,
        make_dataset,
        view_probabilities,
    )
    from pipelines.config import apply_overrides
    from pipelines.training import callbacks

    overrides = dict(item.partition("=")[::2] for item in args.param)
    config = apply_overrides(CaptchaTrainConfig(), overrides)  # the same parsing as `pipelines run --param`
    examples = Examples(uri=os.path.join(args.transform_dir, "transformed_examples"))
    spec = tft.TFTransformOutput(os.path.join(args.transform_dir, "transform_graph")).transformed_feature_spec()
    split = examples.split_files
    train, evaluation = (
        make_dataset(split("train"), spec, config, True),
        make_dataset(split("eval"), spec, config, False),
    )
    model = build_model(spec["image"].shape, config)
    compile_model(model, config, -(-count_records(split("train")) // config.batch_size))
    started = time.perf_counter()
    model.fit(
        train,
        validation_data=evaluation,
        epochs=config.epochs,
        callbacks=callbacks(config, f"/tmp/trainer_variant_logs/{os.getpid()}"),  # two may run at once
        verbose=0,
    )
    seconds = time.perf_counter() - started
    test = make_dataset(split("test"), spec, config, False)
    scores = dict(zip(model.metrics_names, model.evaluate(test, verbose=0)))
    served = [(view_probabilities(model, images, config.shifts), labels) for images, labels in test]
    views = float(full_string_accuracy(tf.concat([y for _, y in served], 0), tf.concat([p for p, _ in served], 0)))
    if args.export:
        calibrate_and_export(
            model, evaluation, config, os.path.join(args.transform_dir, "transform_graph"), args.export
        )
    print(
        json.dumps(
            {
                "params": overrides,
                "train_seconds": round(seconds, 1),
                "test": scores,
                "test_views": {"shifts": config.shifts, "full_string_accuracy": round(views, 4)},
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
