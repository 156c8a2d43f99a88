"""One way to run Beam: pipeline options come from the runner, untouched.

The same component runs on the DirectRunner here and on Flink, Spark or
Dataflow elsewhere: only the arguments differ.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import sys
import tempfile
import time
import weakref

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions

from components.base.tf_errors import is_node_line, without_annotations


class UnknownBeamOption(ValueError):
    pass


class BeamJobFailed(RuntimeError):
    """A Beam job ended in a state other than DONE, or outlived its deadline (then it was cancelled)."""


def failure_line(error: BaseException) -> str:
    """One line for a failed Beam job: the last line of its error (where Beam puts the step's
    exception and "[while running 'STEP']"), or, when a TensorFlow op failed inside the step, that
    op's own message with the step. tf.Transform wraps a failed graph in text that ends "Fetching the
    values for the following Tensor keys: {...}", and the reason is the line above its
    `[[{{node ...}}]]` line (e.g. "Invalid PNG data, size 60")."""
    lines = [line.strip() for line in str(error).strip().splitlines() if line.strip()]
    if not lines:
        return type(error).__name__
    for before, line in zip(lines, lines[1:]):
        if is_node_line(line):
            step = re.search(r"\[while running '[^']*'\]", lines[-1])
            return without_annotations(before) + (f" {step.group(0)}" if step else "")
    return lines[-1]


class JobOptions(PipelineOptions):
    """Options of ours that ride along with Beam's (so `check_beam_args` knows them)."""

    @classmethod
    def _add_argparse_args(cls, parser):
        parser.add_argument(
            "--job_timeout_s",
            type=float,
            default=1800.0,
            help="cancel a Beam job still running after this many seconds (a portable runner whose "
            "workers cannot start waits forever otherwise); 0 = no deadline",
        )
        # Beam's Java FlinkPipelineOptions has it, Python's FlinkRunnerOptions not: declared here so the
        # portable runner sends it to the job server (it drops options nobody declared).
        parser.add_argument(
            "--execution_mode_for_batch",
            choices=["PIPELINED", "BATCH", "PIPELINED_FORCED", "BATCH_FORCED"],
            default=None,
            help="Flink's data exchange mode for batch jobs (the Flink runner's default: PIPELINED)",
        )


def _all_option_classes():
    from apache_beam.options.pipeline_options import PipelineOptions

    pending, seen = [PipelineOptions], []
    while pending:
        cls = pending.pop()
        seen.append(cls)
        pending.extend(cls.__subclasses__())
    return seen


def check_beam_args(args: list[str]) -> list[str]:
    """Return `args` unchanged if Beam knows every option in it, else raise.

    Beam itself silently drops options it does not know; a typo such as
    `--direct_num_worker=2` would then run with the default, so it is refused.
    """
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False, conflict_handler="resolve")
    for cls in _all_option_classes():
        cls._add_argparse_args(parser)
    known, unknown = parser.parse_known_args(args)
    flags = [a for a in unknown if a.startswith("--")]
    if flags:
        raise UnknownBeamOption(f"unknown Beam pipeline option(s): {' '.join(flags)}")
    if unknown:  # words no option took as its value (`--job_endpoint HOST:PORT` takes one; a stray word is left)
        raise UnknownBeamOption(f"unrecognized arguments: {' '.join(unknown)}")
    check_runner(getattr(known, "runner", None))
    return list(args)


def check_runner(name: str | None) -> None:
    """Raise UnknownBeamOption unless Beam would find runner `name`: one of its own runners, by name
    with or without "Runner" and in any case, or a dotted path to a class. Beam refuses any other only
    when a component makes its first pipeline, after the run has begun (and recorded a failure)."""
    if not name or "." in name:
        return
    known = {path.rsplit(".", 1)[-1].lower(): path.rsplit(".", 1)[-1] for path in StandardOptions.ALL_KNOWN_RUNNERS}
    if name.lower() not in known and name.lower() + "runner" not in known:
        raise UnknownBeamOption(f"unknown Beam runner {name!r}; Beam's are {', '.join(sorted(known.values()))}")


def make_pipeline(args: list[str]):
    """A Beam pipeline from these options. Beam makes a temporary folder for each pipeline and removes
    it at the end of run(); one whose building failed (bad input refused while the graph was made) is
    never run, so the folder goes when the pipeline is collected or the process ends."""
    pipeline = beam.Pipeline(options=PipelineOptions(list(args)))
    weakref.finalize(pipeline, shutil.rmtree, pipeline.local_tempdir, True)
    return pipeline


# The runner whose pipeline.run() only submits the job to a job server and returns (what
# pipelines/engines.py uses for Flink). Not FlinkRunner or SparkRunner: they may start a job server
# of their own during run() that outlives it.
SUBMITTING_RUNNERS = ("PortableRunner",)


@contextlib.contextmanager
def _submission_scratch(runner: str):
    """A portable submission's temporary files in a folder that is removed after the job: Beam's stager
    makes a tempfile.mkdtemp() per submission (the staged packages' list, the submission's
    dependencies) and never removes it. Only around run() of a runner that merely submits there: a
    DirectRunner's run() is the whole job, whose own temporary files are not the stager's to remove."""
    if runner not in SUBMITTING_RUNNERS:
        yield
        return
    scratch = tempfile.mkdtemp(prefix="beam-submission-")
    saved, tempfile.tempdir = tempfile.tempdir, scratch
    try:
        yield
    finally:
        tempfile.tempdir = saved
        shutil.rmtree(scratch, ignore_errors=True)


def run_pipeline(pipeline: beam.Pipeline):
    """Run `pipeline` to completion within its `--job_timeout_s`; one clear error otherwise."""
    from apache_beam.runners.runner import PipelineState

    timeout_s = pipeline.options.view_as(JobOptions).job_timeout_s
    runner = pipeline.options.get_all_options().get("runner") or "DirectRunner"
    try:
        with _submission_scratch(runner):  # run() has staged the job's files once it returns
            result = pipeline.run()
        state = result.wait_until_finish(duration=int(timeout_s * 1000) if timeout_s else None)
    except Exception as error:  # noqa: BLE001 - every runner raises its own kinds; one line for the user
        raise BeamJobFailed(f"Beam job on {runner} failed: {failure_line(error)}") from error
    if state not in (PipelineState.DONE, None) and not PipelineState.is_terminal(state):
        try:
            result.cancel()
        finally:
            raise BeamJobFailed(
                f"Beam job on {runner} still {state} after {timeout_s:.0f}s (--job_timeout_s); cancelled it. "
                "On a portable runner this usually means its SDK workers could not start: see the worker pool's log"
            )
    if state not in (PipelineState.DONE, None):
        raise BeamJobFailed(f"Beam job on {runner} ended {state}")
    return result


class CountProgress(beam.DoFn):
    """Passes elements through and prints a running count every `every` elements.

    Each worker process counts its own share; on several workers each line says which worker's
    share it counts (so two lines of "30,000" read as two halves, not one count said twice).
    """

    def __init__(self, label: str, every: int = 10_000, total: int | None = None) -> None:
        super().__init__()
        self.label = label
        self.every = every
        self.total = total
        self.driver_pid = os.getpid()  # the process that built the pipeline; workers differ

    def setup(self):
        self.seen = 0
        self.started = time.monotonic()

    def process(self, element):
        self.seen += 1
        if self.seen % self.every == 0:
            rate = self.seen / max(time.monotonic() - self.started, 1e-9)
            of = f" of {self.total:,}" if self.total else ""
            worker = f", worker {os.getpid()}'s share" if os.getpid() != self.driver_pid else ""
            print(f"  {self.label}: {self.seen:,}{of} ({rate:,.0f}/s{worker})", file=sys.stderr, flush=True)
        yield element


class split_counts:  # noqa: N801 - a namespace of two functions
    """Per-split element counts through Beam metrics (None where a runner has no metrics)."""

    NAMESPACE = "components"

    @staticmethod
    def count(element, split: str):
        from apache_beam.metrics import Metrics

        Metrics.counter(split_counts.NAMESPACE, f"examples[{split}]").inc()
        return element

    @staticmethod
    def read(result, splits) -> dict[str, int] | None:
        from apache_beam.metrics.metric import MetricsFilter

        try:
            counters = result.metrics().query(MetricsFilter().with_namespace(split_counts.NAMESPACE))["counters"]
        except Exception:  # noqa: BLE001 - runners without metrics support
            return None
        totals = {name: 0 for name in splits}
        for counter in counters:
            for name in splits:
                if counter.key.metric.name == f"examples[{name}]":
                    value = counter.committed if counter.committed is not None else counter.attempted
                    totals[name] += value or 0
        return totals
