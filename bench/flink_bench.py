"""The captcha data stages on the DirectRunner vs a Flink session cluster with 1 and 2 TaskManagers.

    python -m bench.flink_bench [--sizes 20000,60000] [--engines direct,flink1,flink2]

For each size and engine: ExampleGen, StatisticsGen, SchemaGen, ExampleValidator
and Transform from an empty store (wall time per component, examples/s over
the whole), and each engine's fixed cost per Beam job (a one-element job:
submission, staging the project's wheel, SDK worker start-up). Processing is
what is left of a component's time after that fixed cost. The Flink clusters
are started here on free ports (each TaskManager 1 slot, parallelism = TaskManagers)
and stopped after.
"""

from __future__ import annotations

import argparse
import io
import os
import tempfile
import time

import apache_beam as beam

from bench.common import print_table, record
from cluster.flink import ClusterConfig, FlinkCluster
from components.base.beam import make_pipeline, run_pipeline
from pipelines.engines import flink_args
from pipelines.metadata import MetadataStore, sqlite_config
from pipelines.registry import PIPELINES, RunOptions
from pipelines.runner import LocalRunner

DATA_STAGES = "Transform"


def fixed_cost(args: list[str]) -> float:
    """Seconds for a Beam job that does next to nothing: the engine's cost per job."""
    pipeline = make_pipeline(args)
    _ = pipeline | beam.Create([1]) | beam.Map(str)  # a builtin: nothing of this module need reach the workers
    started = time.monotonic()
    run_pipeline(pipeline)
    return time.monotonic() - started


def data_stages(size: int, args: list[str], tmp: str) -> dict[str, float]:
    pipeline = (
        PIPELINES["captcha"]
        .create(RunOptions(serving_dir=os.path.join(tmp, "serving"), params={"num_examples": str(size)}))
        .up_to(DATA_STAGES)
    )
    store = MetadataStore(sqlite_config(os.path.join(tmp, "metadata.sqlite")))
    runner = LocalRunner(store, os.path.join(tmp, "runs"), beam_pipeline_args=args, out=io.StringIO())
    started = time.monotonic()
    result = runner.run(pipeline)
    times = {cid: r.seconds for cid, r in result.components.items()}
    times["total"] = time.monotonic() - started
    return times


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="20000,60000")
    parser.add_argument("--engines", default="direct,flink1,flink2")
    parser.add_argument("--logs", help="keep each Flink cluster's logs under this folder (default: discarded)")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    rows = []
    for engine in args.engines.split(","):
        cluster = None
        with tempfile.TemporaryDirectory() as scratch:
            state = os.path.join(args.logs, engine) if args.logs else scratch
            try:
                if engine == "direct":
                    beam_args: list[str] = []
                else:
                    taskmanagers = int(engine.removeprefix("flink"))
                    config = ClusterConfig.on_free_ports(
                        taskmanagers=taskmanagers,
                        slots=1,
                        parallelism=taskmanagers,
                    )
                    cluster = FlinkCluster(state, config=config, out=io.StringIO())
                    cluster.up(timeout=240)
                    beam_args = flink_args(None, [], state_dir=state, out=io.StringIO())
                overhead = fixed_cost(beam_args)
                for size in sizes:
                    with tempfile.TemporaryDirectory() as tmp:
                        times = data_stages(size, beam_args, tmp)
                    beam_steps = ("CaptchaExampleGen", "StatisticsGen", "Transform")
                    rows.append(
                        {
                            "engine": {"direct": "DirectRunner"}.get(engine, f"Flink, {engine[5:]} TaskManager(s)"),
                            "examples": size,
                            "data stages s": times["total"],
                            "examples/s": size / times["total"],
                            "ExampleGen s": times["CaptchaExampleGen"],
                            "StatisticsGen s": times["StatisticsGen"],
                            "Transform s": times["Transform"],
                            "fixed cost per job s": overhead,
                            "processing s": times["total"] - overhead * len(beam_steps),
                        }
                    )
                    print_table("captcha data stages", rows[-1:])
            finally:
                if cluster is not None:
                    cluster.down()
    baseline = {r["examples"]: r["data stages s"] for r in rows if r["engine"] == "DirectRunner"}
    for row in rows:
        if row["examples"] in baseline:
            row["vs DirectRunner"] = baseline[row["examples"]] / row["data stages s"]
    print_table("captcha data stages: DirectRunner vs Flink", rows)
    record("flink", rows)
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(main())
