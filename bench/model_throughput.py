"""Training speed of captcha-model variants: images/s of `fit` on random batches, each variant
in a child interpreter of its own, the variants taking turns round after round so that a noisy
machine slows them alike; reported as ratios against the first variant.

    python -m bench.model_throughput [--rounds 3] [--steps 150] \
        --variant 'wide={"conv_filters": "24,48,96"}' --variant 'default={}'

A variant is NAME=JSON, the JSON a set of CaptchaTrainConfig fields. Input is random noise of
the default transform's shape: what is timed is the model, not the input pipeline
(bench.trainer_bench times that).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

from bench.common import print_table, record

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# What the child runs: build and compile the variant, warm up (tracing), then time `steps` steps.
CHILD = r"""
import json, os, sys, time
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np
import tensorflow as tf
from pipelines.captcha.model import CaptchaTrainConfig, build_model, compile_model
from pipelines.training import input_options
fields, steps, shape = json.loads(sys.argv[1]), int(sys.argv[2]), json.loads(sys.argv[3])
config = CaptchaTrainConfig(**{"lr_schedule": "exponential", **fields})
model = build_model(tuple(shape), config)
compile_model(model, config, 100)
rng = np.random.default_rng(1)
x = rng.random((config.batch_size * 16, *shape), dtype=np.float32)
y = rng.integers(0, len(config.charset), (config.batch_size * 16, config.length))
# Autotuning off, as in the Trainer: with it on, the end of `fit` waited for tf.data's optimisation
# thread, and every second timing or so came out at a whole multiple of about 10.24 s (BENCHMARKS.md).
data = tf.data.Dataset.from_tensor_slices((x, y)).batch(config.batch_size).cache().repeat().with_options(input_options())
model.fit(data, steps_per_epoch=10, epochs=1, verbose=0)
started = time.perf_counter()
model.fit(data, steps_per_epoch=steps, epochs=1, verbose=0)
print(json.dumps({"images_per_s": steps * config.batch_size / (time.perf_counter() - started),
                  "params": model.count_params()}))
"""


def parse_variant(text: str) -> tuple[str, dict]:
    name, sep, fields = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"a variant is NAME=JSON, got {text!r}")
    try:
        parsed = json.loads(fields)
    except json.JSONDecodeError as e:
        raise argparse.ArgumentTypeError(f"variant {name!r}: not JSON ({e})") from None
    if not isinstance(parsed, dict):
        raise argparse.ArgumentTypeError(f"variant {name!r}: the JSON must be an object of config fields")
    return name, parsed


def check_fields(name: str, fields: dict) -> None:
    """A variant's fields make a CaptchaTrainConfig (plain Python, no TensorFlow): a misspelt or
    impossible field is refused before any variant is timed (ValueError naming the variant)."""
    from pipelines.captcha.train_config import CaptchaTrainConfig

    try:
        CaptchaTrainConfig(**{"lr_schedule": "exponential", **fields})
    except (TypeError, ValueError) as error:
        raise ValueError(f"variant {name!r}: {error}") from None


def measure(fields: dict, steps: int, shape: list[int]) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps(fields), str(steps), json.dumps(shape)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    if done.returncode != 0:
        raise RuntimeError(f"variant {fields} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--variant", action="append", type=parse_variant, default=[], help="NAME=JSON (repeatable)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=150, help="timed training steps per measurement")
    parser.add_argument("--shape", default="40,108,1", help="input height,width,channels (the default transform's)")
    args = parser.parse_args(argv)
    # Without --variant: the conv widths before issue #14's change against the default now.
    variants = args.variant or [("wide", {"conv_filters": "24,48,96"}), ("default", {})]
    shape = [int(s) for s in args.shape.split(",")]
    try:
        for name, fields in variants:
            check_fields(name, fields)
    except ValueError as error:
        parser.error(str(error))  # exit 2, before minutes of timing the good ones
    rates: dict[str, list[float]] = {name: [] for name, _ in variants}
    params: dict[str, int] = {}
    for round_ in range(1, args.rounds + 1):
        for name, fields in variants:
            result = measure(fields, args.steps, shape)
            rates[name].append(result["images_per_s"])
            params[name] = result["params"]
            print(f"round {round_}/{args.rounds}: {name} {result['images_per_s']:.0f} images/s", flush=True)
    base = statistics.median(rates[variants[0][0]])
    rows = [
        {
            "variant": name,
            "fields": json.dumps(fields),
            "parameters": params[name],
            "images/s (median)": statistics.median(rates[name]),
            "each round": " ".join(f"{r:.0f}" for r in rates[name]),
            f"vs {variants[0][0]}": statistics.median(rates[name]) / base,
        }
        for name, fields in variants
    ]
    print_table(f"Captcha model training speed, {args.steps} steps x {args.rounds} rounds, input {shape}", rows)
    record("model_throughput", rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
