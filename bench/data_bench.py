"""Data components: ExampleGen+StatisticsGen on DirectRunner (1 and 2 workers) against a plain
single-process loop that writes the same TFRecords; `validate` on a 1,000,000-row CSV.

    python -m bench.data_bench [--captchas N] [--csv-rows N]
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time

from bench.common import print_table, record, run_child


def plain_loop(n: int, out_dir: str) -> float:
    """Render, split by key hash and write gzip TFRecords in one process: the baseline."""
    import tensorflow as tf

    from components.example_gen.captcha_source import CaptchaRenderer
    from components.example_gen.executor import image_example
    from components.example_gen.splits import SplitConfig

    splits = SplitConfig.parse("train:8,eval:1,test:1")
    renderer = CaptchaRenderer(seed=1)
    options = tf.io.TFRecordOptions(compression_type="GZIP")
    started = time.perf_counter()
    writers = [tf.io.TFRecordWriter(os.path.join(out_dir, f"{name}.tfrecord.gz"), options) for name in splits.names]
    for i in range(n):
        captcha = renderer.render(i)
        writers[splits.index_for(captcha.key)].write(image_example(captcha.png, captcha.text).SerializeToString())
    for writer in writers:
        writer.close()
    return time.perf_counter() - started


def components_run(n: int, out_dir: str, beam_args: list[str]) -> float:
    import io

    from components.example_gen import CaptchaExampleGen
    from components.statistics_gen import StatisticsGen
    from pipelines.metadata import MetadataStore, sqlite_config
    from pipelines.pipeline import Pipeline
    from pipelines.runner import LocalRunner

    gen = CaptchaExampleGen(num_examples=n, seed=1)
    stats = StatisticsGen(examples=gen.outputs["examples"])
    store = MetadataStore(sqlite_config(os.path.join(out_dir, "m.sqlite")))
    runner = LocalRunner(store, out_dir, beam_pipeline_args=beam_args, out=io.StringIO())
    started = time.perf_counter()
    runner.run(Pipeline("bench", [gen, stats]))
    return time.perf_counter() - started


def bench_example_gen(n: int) -> list[dict]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        base = plain_loop(n, tmp)
        rows.append(
            {
                "what": "plain loop: render + write TFRecords (baseline)",
                "examples": n,
                "seconds": base,
                "examples/s": n / base,
                "vs baseline": 1.0,
            }
        )
        for label, args in [
            ("ExampleGen+StatisticsGen, DirectRunner, 1 worker", []),
            (
                "ExampleGen+StatisticsGen, DirectRunner, 2 workers (multi_processing)",
                ["--direct_num_workers=2", "--direct_running_mode=multi_processing"],
            ),
        ]:
            seconds = components_run(n, os.path.join(tmp, label[-12:].replace(" ", "_")), args)
            rows.append(
                {
                    "what": label,
                    "examples": n,
                    "seconds": seconds,
                    "examples/s": n / seconds,
                    "vs baseline": base / seconds,
                }
            )
    return rows


def write_big_csv(path: str, rows: int) -> None:
    rng = random.Random(0)
    with open(path, "w") as f:
        f.write("area,bedrooms,price\n")
        for _ in range(rows):
            area = rng.randint(600, 4500)
            f.write(f"{area},{rng.randint(1, 6)},{area * 150 + rng.randint(-20000, 20000)}\n")


def bench_validate(rows: int) -> list[dict]:
    schema = os.path.join(
        os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "schemas", "house_price", "schema.pbtxt"
    )
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "big.csv")
        write_big_csv(path, rows)
        size_mib = os.path.getsize(path) / 2**20
        seconds, peak_mib, result = run_child(
            [
                sys.executable,
                "-m",
                "pipelines",
                "validate",
                "--data",
                path,
                "--schema",
                schema,
                "--report",
                os.path.join(tmp, "r"),
            ]
        )
        if result.returncode != 0:
            raise SystemExit(f"validate exited {result.returncode}: {result.stderr[-2000:]}")
        return [
            {
                "what": "validate (CSV, DirectRunner)",
                "rows": rows,
                "file MiB": size_mib,
                "seconds": seconds,
                "rows/s": rows / seconds,
                "peak RSS MiB": peak_mib,
            }
        ]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--captchas", type=int, default=3000)
    parser.add_argument("--csv-rows", type=int, default=1_000_000)
    parser.add_argument("--only", choices=["example_gen", "validate"])
    args = parser.parse_args(argv)
    if args.only in (None, "example_gen"):
        rows = bench_example_gen(args.captchas)
        print_table(f"ExampleGen+StatisticsGen vs a plain loop ({args.captchas} captchas)", rows)
        record("example_gen", rows)
    if args.only in (None, "validate"):
        rows = bench_validate(args.csv_rows)
        print_table(f"validate on a {args.csv_rows:,}-row CSV", rows)
        record("validate", rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
