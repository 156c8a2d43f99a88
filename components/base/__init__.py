"""The component framework: artifact types, component declarations, executors."""

from components.base import fileio  # noqa: F401 - registers the Beam side of the layer
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
    "InfraBlessing",
    "ExecutorContext",
    "Model",
    "ModelBlessing",
    "ModelEvaluation",
    "Parameter",
    "PushedModel",
    "Schema",
    "TransformGraph",
]
