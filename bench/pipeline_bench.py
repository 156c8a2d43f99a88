"""Wall time and accuracy of the default captcha pipeline, from empty output directories.

python -m bench.pipeline_bench [--param NAME=VALUE ...]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile

from bench.common import print_table, record, run_child


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--param", action="append", default=[])
    parser.add_argument("--name", default="pipeline")
    args = parser.parse_args(argv)
    params = [p for pair in args.param for p in ("--param", pair)]
    with tempfile.TemporaryDirectory() as tmp:
        seconds, peak_mib, result = run_child(
            [
                sys.executable,
                "-m",
                "pipelines",
                "run",
                "captcha",
                *params,
                "--output-dir",
                f"{tmp}/runs",
                "--serving-dir",
                f"{tmp}/serving",
            ]
        )
        sys.stderr.write(result.stderr[-6000:])
        print(result.stdout)
        if result.returncode != 0:
            return result.returncode
        metrics = dict(
            re.findall(r"(full_string_accuracy|character_accuracy) ([0-9.]+)", result.stdout.split("test split:")[1])
        )
        steps = dict(re.findall(r"\] (\w+): (?:done|cache hit) in ([0-9.]+)s", result.stderr))
    row = {
        "pipeline": "captcha " + " ".join(args.param) if args.param else "captcha (defaults)",
        "wall s": seconds,
        "test full-string acc": float(metrics["full_string_accuracy"]),
        "test char acc": float(metrics["character_accuracy"]),
        "peak RSS MiB": peak_mib,
        "steps s": json.dumps({k: float(v) for k, v in steps.items()}),
    }
    print_table("make pipeline: wall time and accuracy", [row])
    record(args.name, [row])
    return 0


if __name__ == "__main__":
    sys.exit(main())
