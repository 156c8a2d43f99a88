"""The local DAG runner: order, per-execution directories, ML Metadata, caching.

Each execution writes into `<root>/<component>/<execution-id>.staging/` and
the directory is renamed to `<execution-id>/` only when the executor
succeeded; only then are its artifacts published LIVE. A failed or
interrupted execution is recorded FAILED and its directory is kept, renamed
`<execution-id>.failed/`, for inspection; nothing downstream ever reads it.
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
import os
import sys
import time
import traceback
from typing import Any, Callable, TextIO

from components.base import Artifact, BaseComponent, ExecutorContext, fileio
from pipelines.cache import CacheKey, cache_key
from pipelines.metadata import MetadataStore, error_line, runner_identity
from pipelines.pipeline import Pipeline

log = logging.getLogger(__name__)


class ComponentFailed(RuntimeError):
    """A component's executor raised; the message is the executor's, in one line."""

    def __init__(self, component_id: str, execution_id: int, message: str) -> None:
        super().__init__(f"{component_id} failed (execution {execution_id}): {message}")
        self.component_id = component_id
        self.execution_id = execution_id


class PipelineStopped(RuntimeError):
    """A component's gate stopped the run after it completed (e.g. data anomalies)."""

    def __init__(self, component_id: str, message: str) -> None:
        super().__init__(f"{component_id} stopped the run: {message}")
        self.component_id = component_id
        self.message = message


@dataclasses.dataclass
class ComponentResult:
    component_id: str
    execution_id: int
    cached: bool
    seconds: float
    outputs: dict[str, list[Artifact]]


@dataclasses.dataclass
class RunResult:
    pipeline_name: str
    run_id: str
    components: dict[str, ComponentResult]

    def outputs(self, component_id: str, key: str) -> list[Artifact]:
        return self.components[component_id].outputs[key]


def _one_line(error: BaseException) -> str:
    line = error_line(str(error))
    return f"{type(error).__name__}: {line}" if line else type(error).__name__


class LocalRunner:
    def __init__(
        self,
        store: MetadataStore,
        pipeline_root: str,
        *,
        beam_pipeline_args: list[str] | None = None,
        enable_cache: bool = True,
        out: TextIO | None = None,
        clock: Callable[[], float] = time.monotonic,
        store_wait_s: float | None = None,
    ) -> None:
        self.store = store
        self.pipeline_root = os.path.abspath(pipeline_root) if fileio.is_local(pipeline_root) else pipeline_root
        self.beam_pipeline_args = list(beam_pipeline_args or [])
        self.enable_cache = enable_cache
        self.out = out or sys.stderr
        self.clock = clock
        self.store_wait_s = store_wait_s  # how long to wait for a SQLite store another runner holds

    def _say(self, message: str) -> None:
        print(message, file=self.out, flush=True)

    def run(self, pipeline: Pipeline, run_id: str | None = None) -> RunResult:
        """Run every component in order; on a SQLite store, only after other runners on it are done."""
        with self.store.exclusive(self.store_wait_s, say=self._say):
            return self._run(pipeline, run_id)

    def _run(self, pipeline: Pipeline, run_id: str | None) -> RunResult:
        # Time to the microsecond and 16 random bits: runs released at the same moment (two hosts on one
        # shared store, or a test's barrier) still get ids of their own.
        run_id = run_id or f"{datetime.datetime.now():%Y%m%d-%H%M%S-%f}-{os.urandom(2).hex()}"
        # On SQLite this runner holds the store: any execution still RUNNING belongs to a runner that died.
        abandoned = self.store.abandon_dead_executions(exclusive=self.store.sqlite_path is not None)
        if abandoned:
            self._say(
                f"marked execution(s) {', '.join(map(str, abandoned))} abandoned: their runner died before they finished"
            )
        contexts = self.store.start_run(pipeline.name, run_id)
        ordered = pipeline.ordered()
        produced: dict[tuple[str, str], list[Artifact]] = {}
        results: dict[str, ComponentResult] = {}
        started = self.clock()
        self._say(f"pipeline {pipeline.name}: run {run_id}, {len(ordered)} components, root {self.pipeline_root}")
        for number, component in enumerate(ordered, start=1):
            inputs = {key: produced[(ch.producer_id, ch.key)] for key, ch in component.inputs.items()}
            prefix = f"[{number}/{len(ordered)}] {component.id}"
            t0 = self.clock()
            seconds_left = None
            if pipeline.time_budget_minutes:
                seconds_left = pipeline.time_budget_minutes * 60 - (t0 - started)
            result = self._run_component(component, inputs, contexts, pipeline.name, prefix, seconds_left)
            result.seconds = self.clock() - t0
            results[component.id] = result
            for key, artifacts in result.outputs.items():
                produced[(component.id, key)] = artifacts
            how = "cache hit" if result.cached else "done"
            self._say(
                f"{prefix}: {how} in {result.seconds:.1f}s "
                f"(execution {result.execution_id}; elapsed {self.clock() - started:.1f}s)"
            )
            verdict = component.gate(result.outputs)
            if verdict:
                raise PipelineStopped(component.id, verdict)
        self._say(f"pipeline {pipeline.name}: finished in {self.clock() - started:.1f}s")
        return RunResult(pipeline.name, run_id, results)

    def _run_component(
        self,
        component: BaseComponent,
        inputs: dict[str, list[Artifact]],
        contexts: list[Any],  # ml_metadata Contexts of the pipeline and the run
        pipeline_name: str,
        prefix: str,
        seconds_left: float | None = None,
    ) -> ComponentResult:
        """One component: reuse a cached execution, or execute it in a staging folder and publish."""
        key = cache_key(component, inputs)
        properties = {
            "component_id": component.id,
            "pipeline_name": pipeline_name,
            "cache_key": key.value,
            "code_version": key.code_version,
            "parameters": key.parameters,
            **runner_identity(),
        }
        cached = self._from_cache(component, inputs, contexts, key, properties)
        if cached is not None:
            return cached
        self._say(f"{prefix}: running")
        execution_id = self.store.start_execution(contexts, type(component).__name__, properties, inputs)
        final_dir = os.path.join(self.pipeline_root, component.id, str(execution_id))
        outputs = self._execute(component, inputs, contexts, execution_id, final_dir, pipeline_name, seconds_left)
        self.store.publish_execution(execution_id, contexts, outputs, properties={"execution_dir": final_dir})
        return ComponentResult(component.id, execution_id, False, 0.0, outputs)

    def _from_cache(
        self,
        component: BaseComponent,
        inputs: dict[str, list[Artifact]],
        contexts: list[Any],
        key: CacheKey,
        properties: dict[str, Any],
    ) -> ComponentResult | None:
        """The outputs of an earlier COMPLETE execution with the same key, recorded as this run's."""
        if not (self.enable_cache and component.CACHEABLE):
            return None
        component_type = type(component).__name__
        hit = self.store.find_cached(component_type, key.value)
        if hit is None:
            return None
        source_id, outputs = hit
        execution_id = self.store.record_cached(
            contexts, component_type, properties, inputs, outputs, cached_from=source_id
        )
        return ComponentResult(component.id, execution_id, True, 0.0, outputs)

    def _execute(
        self,
        component: BaseComponent,
        inputs: dict[str, list[Artifact]],
        contexts: list[Any],
        execution_id: int,
        final_dir: str,
        pipeline_name: str,
        seconds_left: float | None,
    ) -> dict[str, list[Artifact]]:
        """Run the executor on fresh outputs in `<final_dir>.staging`, renamed to `final_dir` only on
        success (a failure leaves `<final_dir>.failed` and a FAILED execution); the outputs' URIs."""
        staging_dir = final_dir + ".staging"
        if fileio.exists(staging_dir):  # left by a runner that died mid-execution
            fileio.rmtree(staging_dir)
        fileio.makedirs(staging_dir)
        outputs = {
            key: [artifact_type(uri=os.path.join(staging_dir, key))]
            for key, artifact_type in component.SPEC.outputs.items()
        }
        for artifacts in outputs.values():
            fileio.makedirs(artifacts[0].uri)
        # Scratch space on the artifacts' filesystem, so Beam workers on other hosts reach it too
        # (tf.Transform writes its analyzers' temporary files there).
        tmp_dir = os.path.join(staging_dir, ".tmp")
        fileio.makedirs(tmp_dir)
        try:
            context = ExecutorContext(
                pipeline_name=pipeline_name,
                component_id=component.id,
                execution_id=execution_id,
                beam_pipeline_args=component.beam_pipeline_args + self.beam_pipeline_args,
                tmp_dir=tmp_dir,
                seconds_left=seconds_left,
            )
            try:
                if component.EXECUTOR is None:
                    raise TypeError(f"{type(component).__name__} declares no EXECUTOR")
                component.EXECUTOR(context).Do(inputs, outputs, dict(component.parameters))
            finally:
                if fileio.exists(tmp_dir):
                    fileio.rmtree(tmp_dir)
            fileio.rename_no_replace(staging_dir, final_dir)
        except BaseException as error:  # noqa: BLE001 - KeyboardInterrupt too: record, then re-raise
            message = "interrupted" if isinstance(error, KeyboardInterrupt) else _one_line(error)
            failed_dir = final_dir + ".failed"
            if fileio.isdir(staging_dir):
                if fileio.exists(failed_dir):
                    fileio.rmtree(failed_dir)
                fileio.rename(staging_dir, failed_dir)
            detail = "".join(traceback.format_exception(error))
            self.store.fail_execution(execution_id, contexts, detail)
            log.debug("execution %s failed:\n%s", execution_id, detail)
            if isinstance(error, KeyboardInterrupt):
                raise
            raise ComponentFailed(component.id, execution_id, message) from error
        for artifacts in outputs.values():
            for artifact in artifacts:
                artifact.uri = final_dir + artifact.uri[len(staging_dir) :]
        return outputs
