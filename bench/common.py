"""Shared benchmark plumbing: timing, peak memory of child processes, the results table."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time

OUT_DIR = os.environ.get("BENCH_OUT", "bench_out")


def run_child(args: list[str], **kwargs) -> tuple[float, float, subprocess.CompletedProcess]:
    """(seconds, peak RSS in MiB of the child and its descendants, result). One child at a time."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    started = time.perf_counter()
    result = subprocess.run(args, capture_output=True, text=True, **kwargs)
    seconds = time.perf_counter() - started
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    if peak_kib <= before:
        print("  (peak RSS not above an earlier child's; figure is an upper bound)", file=sys.stderr)
    return seconds, peak_kib / 1024.0, result


def record(name: str, rows: list[dict]) -> str:
    os.makedirs(OUT_DIR, exist_ok=True)
    path = os.path.join(OUT_DIR, f"{name}.json")
    with open(path, "w") as f:
        json.dump(rows, f, indent=2)
    return path


def print_table(title: str, rows: list[dict]) -> None:
    if not rows:
        return
    columns = list(rows[0])
    widths = {c: max(len(c), *(len(_cell(r.get(c))) for r in rows)) for c in columns}
    print(f"\n## {title}\n")
    print("| " + " | ".join(c.ljust(widths[c]) for c in columns) + " |")
    print("| " + " | ".join("-" * widths[c] for c in columns) + " |")
    for r in rows:
        print("| " + " | ".join(_cell(r.get(c)).ljust(widths[c]) for c in columns) + " |")
    sys.stdout.flush()


def _cell(value) -> str:
    if isinstance(value, float):
        return f"{value:,.2f}"
    return str(value)
