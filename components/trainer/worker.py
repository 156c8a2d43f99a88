"""One TensorFlow worker of a multi-worker Trainer: `python -m components.trainer.worker --spec SPEC.json`.

TF_CONFIG (cluster and this task) comes from the environment. The strategy is
created before any other TensorFlow op, as collective ops require; then the
pipeline's run_fn trains under it. The chief (worker 0) writes into the
Model artifact; every other worker writes its copies into its own temporary
directory, as MultiWorkerMirroredStrategy expects all workers to save.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def task_of(tf_config: dict) -> tuple[str, int]:
    task = tf_config.get("task") or {}
    return task.get("type", "worker"), int(task.get("index", 0))


def is_chief(tf_config: dict) -> bool:
    kind, index = task_of(tf_config)
    return kind == "chief" or (kind == "worker" and index == 0 and "chief" not in tf_config.get("cluster", {}))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--spec", required=True, help="JSON written by the Trainer: run_fn and its FnArgs")
    parser.add_argument(
        "--wait",
        type=float,
        default=0.0,
        help="seconds to wait for the spec to appear (a worker pod started before the chief's Trainer reached training)",
    )
    args = parser.parse_args(argv)
    deadline = time.monotonic() + args.wait
    while not os.path.isfile(args.spec) and time.monotonic() < deadline:
        time.sleep(1.0)
    if not os.path.isfile(args.spec):
        parser.error(f"no spec at {args.spec}")
    tf_config = json.loads(os.environ.get("TF_CONFIG") or "{}")
    if not tf_config.get("cluster"):
        parser.error("TF_CONFIG with a cluster and a task is required in the environment")

    from pipelines.training import multi_worker_strategy

    strategy = multi_worker_strategy()  # before any other TF op
    with open(args.spec) as f:
        spec = json.load(f)

    from components.base.functions import load_function
    from components.trainer.fn_args import FnArgs

    fn_args = FnArgs(**spec["fn_args"])
    kind, index = task_of(tf_config)
    if not is_chief(tf_config):
        scratch = tempfile.mkdtemp(prefix=f"trainer-{kind}-{index}-", dir=os.path.dirname(os.path.abspath(args.spec)))
        fn_args = dataclasses.replace(fn_args, model_dir=scratch)
    print(
        f"  {kind} {index}: {strategy.num_replicas_in_sync} replicas in sync, writing to {fn_args.model_dir}",
        file=sys.stderr,
        flush=True,
    )
    load_function(spec["run_fn"])(fn_args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
