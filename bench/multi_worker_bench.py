"""Captcha training on one TensorFlow worker vs two (MultiWorkerMirroredStrategy, a host each).

    python -m bench.multi_worker_bench [--examples 4000] [--epochs 1,4]

The same Transform output and global batch for both. Each is timed for the
fewer and the more epochs; the difference divided by the extra epochs is the
steady time per epoch (start-up, graph tracing and export cancel out), so
examples/s = training examples per epoch / that time. Start-up is the rest.
Every training runs in a fresh process (the two workers are always fresh
processes; a single worker trained twice in this process would find its
functions traced already and look faster than it is).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import tempfile
import time

from bench.common import print_table, record
from components.base import Artifact, Model
from components.trainer import multi_worker
from components.trainer.executor import train
from pipelines.metadata import MetadataStore, sqlite_config
from pipelines.registry import PIPELINES, RunOptions
from pipelines.runner import LocalRunner

RUN_FN = "pipelines.captcha.model:run_fn"


def _train(inputs: dict, config: dict, tmp: str) -> float:
    model = Model(uri=tempfile.mkdtemp(dir=tmp))
    started = time.monotonic()
    train(inputs, model, RUN_FN, config, "captcha")
    return time.monotonic() - started


def train_seconds(inputs: dict, config: dict, tmp: str) -> float:
    """One training in a fresh process (this module with --train-one); its seconds."""
    job = {
        "inputs": {
            k: [{"type": a.type_name, "uri": a.uri, "properties": a.properties} for a in v] for k, v in inputs.items()
        },
        "config": config,
        "tmp": tmp,
    }
    out = subprocess.run(
        [sys.executable, "-m", "bench.multi_worker_bench", "--train-one", json.dumps(job)],
        capture_output=True,
        text=True,
        check=True,
    )
    return float(out.stdout.strip().splitlines()[-1])


def _train_one(job_json: str) -> None:
    job = json.loads(job_json)
    inputs = {
        k: [Artifact.type_for(a["type"])(uri=a["uri"], properties=a["properties"]) for a in v]
        for k, v in job["inputs"].items()
    }
    print(_train(inputs, job["config"], job["tmp"]))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--examples", type=int, default=4000)
    parser.add_argument("--epochs", default="1,4")
    parser.add_argument("--train-one", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.train_one:
        _train_one(args.train_one)
        return 0
    few, many = (int(e) for e in args.epochs.split(","))
    with tempfile.TemporaryDirectory() as tmp:
        pipeline = PIPELINES["captcha"].create(
            RunOptions(
                quick=True, serving_dir=os.path.join(tmp, "serving"), params={"num_examples": str(args.examples)}
            )
        )
        store = MetadataStore(sqlite_config(os.path.join(tmp, "metadata.sqlite")))
        result = LocalRunner(store, os.path.join(tmp, "runs"), out=io.StringIO()).run(pipeline.up_to("Transform"))
        [transformed] = result.outputs("Transform", "transformed_examples")
        inputs = {"examples": [transformed], "transform_graph": result.outputs("Transform", "transform_graph")}
        [trainer] = [c for c in pipeline.components if c.id == "Trainer"]
        base = {
            **json.loads(trainer.parameters["train_config"]),
            "early_stopping_patience": 0,
            "time_budget_minutes": 30,
        }
        [raw] = result.outputs("CaptchaExampleGen", "examples")
        train_examples = raw.properties.get("num_examples_train") or 0
        rows = []
        for label, extra in (("1 worker", {}), ("2 workers", {"distribution": "multi_worker", "workers": 2})):
            short = train_seconds(inputs, {**base, **extra, "epochs": few}, tmp)
            long = train_seconds(inputs, {**base, **extra, "epochs": many}, tmp)
            per_epoch = (long - short) / (many - few)
            rows.append(
                {
                    "trainer": label,
                    "train examples": train_examples,
                    f"{few} epoch(s) s": short,
                    f"{many} epochs s": long,
                    "s per epoch": per_epoch,
                    "examples/s": train_examples / per_epoch if per_epoch > 0 else float("nan"),
                    "start-up s": short - few * per_epoch,
                }
            )
        rows[1]["vs 1 worker"] = rows[1]["examples/s"] / rows[0]["examples/s"]
        isolation = multi_worker.netns_available() or "network namespaces"
    print_table(f"captcha training, 1 vs 2 workers (2 workers on: {isolation})", rows)
    record("multi_worker", rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
