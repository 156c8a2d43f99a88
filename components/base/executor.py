"""Executors: the work behind a component.

The runner calls `Do(input_dict, output_dict, exec_properties)`. Inputs are
published artifacts; outputs are fresh artifacts whose `uri` is an empty
staging directory that the runner renames into place only on success.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from typing import Any

from components.base import beam as beam_support
from components.base import fileio
from components.base.artifacts import Artifact

# Beam's file sinks write into <the prefix's folder>/beam-temp-<prefix>-<uuid>/ and remove it once
# the write is finalised.
BEAM_TEMP_PATTERN = "beam-temp-*"


@dataclasses.dataclass
class ExecutorContext:
    """What the runner tells an executor about the execution it is part of."""

    pipeline_name: str = "adhoc"
    component_id: str = "component"
    execution_id: int = 0
    beam_pipeline_args: list[str] = dataclasses.field(default_factory=list)
    tmp_dir: str = ""
    seconds_left: float | None = None  # of the pipeline run's time budget, at this execution's start


class BaseExecutor:
    def __init__(self, context: ExecutorContext | None = None) -> None:
        self.context = context or ExecutorContext()
        self.log = logging.getLogger(f"components.{self.context.component_id}")

    def Do(  # noqa: N802 - TFX's name for the entry point
        self,
        input_dict: dict[str, list[Artifact]],
        output_dict: dict[str, list[Artifact]],
        exec_properties: dict[str, Any],
    ) -> None:
        raise NotImplementedError


class BaseBeamExecutor(BaseExecutor):
    """An executor whose work is a Beam pipeline built from the runner's options."""

    def _make_beam_pipeline(self) -> Any:  # apache_beam.Pipeline
        return beam_support.make_pipeline(self.context.beam_pipeline_args)

    def _run_beam_pipeline(self, pipeline: Any, written: Sequence[Artifact] = ()) -> Any:
        """Run to completion within the job deadline (`--job_timeout_s`); raises BeamJobFailed.

        `written`: the output artifacts whose split folders the job wrote files into. A job that
        Flink restarted after losing a TaskManager writes them again under new temporary folders
        and leaves the first attempt's behind; those are removed once the job has succeeded, so a
        published artifact holds its data files only. Returns apache_beam's PipelineResult."""
        result = beam_support.run_pipeline(pipeline)
        for artifact in written:
            for leftover in fileio.glob(fileio.join(artifact.uri, "*", BEAM_TEMP_PATTERN)):
                self.log.info("removing %s, left by an earlier attempt of the job", leftover)
                fileio.rmtree(leftover)
        return result
