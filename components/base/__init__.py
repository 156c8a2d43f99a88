"""The component framework: artifact types, component declarations, executors.

The names below are imported when first used (PEP 562), not with the package: `components.base.artifacts`,
`.tf_errors` and `.interrupt` are plain Python, and a command that needs only them (`pipelines runs`
reading ML Metadata) must not pay for TensorFlow and Beam, which `fileio` and the executors import.
Every executor imports `fileio`, which registers the Beam side of the filesystem layer."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__all__ = [
    "Artifact",
    "BaseBeamExecutor",
    "BaseComponent",
    "BaseExecutor",
    "Channel",
    "ComponentSpec",
    "ExampleAnomalies",
    "ExampleStatistics",
    "Examples",
    "ExecutorContext",
    "InfraBlessing",
    "Model",
    "ModelBlessing",
    "ModelEvaluation",
    "Parameter",
    "PushedModel",
    "Schema",
    "TransformGraph",
]

# Where the names live, searched in this order: the artifact types need nothing heavy, the others do.
_HOMES = ("components.base.artifacts", "components.base.component", "components.base.executor")


def __getattr__(name: str) -> Any:
    if name in __all__:
        for home in _HOMES:
            module = importlib.import_module(home)
            if hasattr(module, name):
                globals()[name] = value = getattr(module, name)
                return value
    raise AttributeError(f"module 'components.base' has no attribute {name!r}")


if TYPE_CHECKING:
    from components.base.artifacts import (
        Artifact,
        ExampleAnomalies,
        Examples,
        ExampleStatistics,
        InfraBlessing,
        Model,
        ModelBlessing,
        ModelEvaluation,
        PushedModel,
        Schema,
        TransformGraph,
    )
    from components.base.component import BaseComponent, Channel, ComponentSpec, Parameter
    from components.base.executor import BaseBeamExecutor, BaseExecutor, ExecutorContext
