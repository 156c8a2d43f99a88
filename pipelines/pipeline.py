"""A pipeline: a named DAG of components, in dependency order."""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

from components.base import BaseComponent


class PipelineDefinitionError(ValueError):
    pass


@dataclasses.dataclass
class Pipeline:
    name: str
    components: list[BaseComponent]
    # Turns the runner's RunResult into the closing summary `pipelines run` prints.
    summarize: Callable[[Any], str] | None = None
    # The training metric `pipelines compare` plots beside the loss.
    primary_metric: str = "loss"
    # Minutes the whole run should take; components that trade time for quality (the
    # Trainer's time budget) fit into what is left when they start. None: no limit.
    time_budget_minutes: float | None = None

    def __post_init__(self) -> None:
        ids = [c.id for c in self.components]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise PipelineDefinitionError(f"pipeline {self.name}: duplicate component id(s) {duplicates}")
        known = set(ids)
        for component in self.components:
            missing = component.upstream_ids - known
            if missing:
                raise PipelineDefinitionError(
                    f"pipeline {self.name}: {component.id} reads from {sorted(missing)}, not in the pipeline"
                )

    def up_to(self, component_id: str) -> "Pipeline":
        """The sub-pipeline that `component_id` needs: it and everything upstream of it."""
        by_id = {c.id: c for c in self.components}
        if component_id not in by_id:
            known = ", ".join(c.id for c in self.ordered())
            raise PipelineDefinitionError(f"pipeline {self.name} has no component {component_id!r} (it has: {known})")
        needed, pending = set(), [component_id]
        while pending:
            current = pending.pop()
            if current not in needed:
                needed.add(current)
                pending.extend(by_id[current].upstream_ids)
        return dataclasses.replace(self, components=[c for c in self.components if c.id in needed], summarize=None)

    def ordered(self) -> list[BaseComponent]:
        """Topological order; ties keep the order the components were listed in."""
        by_id = {c.id: c for c in self.components}
        done: list[str] = []
        visiting: set[str] = set()

        def visit(component_id: str) -> None:
            if component_id in done:
                return
            if component_id in visiting:
                raise PipelineDefinitionError(f"pipeline {self.name}: cycle through {component_id}")
            visiting.add(component_id)
            for upstream in sorted(by_id[component_id].upstream_ids, key=ids_order.index):
                visit(upstream)
            visiting.discard(component_id)
            done.append(component_id)

        ids_order = [c.id for c in self.components]
        for component_id in ids_order:
            visit(component_id)
        return [by_id[i] for i in done]
