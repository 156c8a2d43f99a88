"""The pipelines this repository knows, by name."""

from __future__ import annotations

import dataclasses
import importlib
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:  # the pipeline framework imports TensorFlow and Beam; the names alone do not need it
    from pipelines.pipeline import Pipeline


class NotBuiltYet(RuntimeError):
    pass


@dataclasses.dataclass(frozen=True)
class RunOptions:
    """What `pipelines run` passes to a pipeline factory."""

    quick: bool = False
    serving_dir: str = "serving_models"
    data: str | None = None
    params: dict[str, str] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class PipelineEntry:
    name: str
    description: str
    module: str  # defines create_pipeline(options: RunOptions) -> Pipeline

    def create(self, options: RunOptions) -> Pipeline:
        try:
            factory: Callable[[RunOptions], Pipeline] = importlib.import_module(self.module).create_pipeline
        except ModuleNotFoundError as error:
            if error.name != self.module:
                raise
            raise NotBuiltYet(f"pipeline {self.name!r} is not built yet") from None
        return factory(options)


PIPELINES: dict[str, PipelineEntry] = {
    entry.name: entry
    for entry in (
        PipelineEntry("captcha", "4-character captcha recognizer (generated with `captcha`, CNN)", "pipelines.captcha"),
        PipelineEntry(
            "house_price", "house-price regression on a CSV (area, bedrooms -> price)", "pipelines.house_price"
        ),
        PipelineEntry(
            "mnist", "handwritten digits (MNIST IDX files): the book's softmax regression or CNN", "pipelines.mnist"
        ),
    )
}
