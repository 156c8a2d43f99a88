"""`make bench`: every benchmark, each beside its baseline in the same run."""

import sys

from bench import (
    data_bench,
    flink_bench,
    model_throughput,
    multi_worker_bench,
    pipeline_bench,
    reliability_bench,
    robustness,
    serving_bench,
    trainer_bench,
)

STEPS = {
    "data": data_bench.main,
    "trainer": trainer_bench.main,
    "model": model_throughput.main,
    "pipeline": pipeline_bench.main,
    "serving": serving_bench.main,
    "flink": flink_bench.main,
    "multi_worker": multi_worker_bench.main,
    "reliability": reliability_bench.main,
    "robustness": robustness.main,
}

if __name__ == "__main__":
    chosen = sys.argv[1:] or list(STEPS)
    unknown = [c for c in chosen if c not in STEPS]
    if unknown:
        sys.exit(f"unknown benchmark(s) {unknown}; choose from {list(STEPS)}")
    codes = [STEPS[name]([]) for name in chosen]
    sys.exit(max(codes))
