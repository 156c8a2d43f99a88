"""Typed artifacts: a URI plus properties, recorded in ML Metadata.

An artifact type fixes the names and kinds of its properties; the runner
registers each type in ML Metadata and turns artifacts into MLMD records and
back. Components only ever see `Artifact` objects, never each other's paths.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

# Property kinds, as ML Metadata names them.
STRING = "STRING"
INT = "INT"
DOUBLE = "DOUBLE"
_PYTHON_TYPES: dict[str, type | tuple[type, ...]] = {STRING: str, INT: int, DOUBLE: (int, float)}

# A split's data files: Beam's writers get Split-<name>/data as their prefix and name each file
# data-SSSSS-of-NNNNN<suffix>; readers take the files named data* and nothing else in the folder.
SPLIT_FILE_PREFIX = "data"


@dataclasses.dataclass
class Artifact:
    """One artifact: where it lives and what it is."""

    TYPE_NAME: ClassVar[str] = "Artifact"
    PROPERTIES: ClassVar[dict[str, str]] = {}

    uri: str = ""
    properties: dict[str, Any] = dataclasses.field(default_factory=dict)
    id: int | None = None  # ML Metadata id, set once published

    _registry: ClassVar[dict[str, type["Artifact"]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        Artifact._registry[cls.TYPE_NAME] = cls

    @staticmethod
    def type_for(type_name: str) -> type["Artifact"]:
        """The class registered under an ML Metadata type name."""
        return Artifact._registry.get(type_name, Artifact)

    @property
    def type_name(self) -> str:
        return self.TYPE_NAME

    def get(self, name: str, default: Any = None) -> Any:
        return self.properties.get(name, default)

    def set(self, name: str, value: Any) -> None:
        if name in self.PROPERTIES and value is not None:
            kind = self.PROPERTIES[name]
            if kind == INT and isinstance(value, bool):
                value = int(value)
            expected = _PYTHON_TYPES[kind]
            if not isinstance(value, expected):
                raise TypeError(f"{self.TYPE_NAME}.{name} is {kind}, got {value!r}")
        self.properties[name] = value

    @property
    def split_names(self) -> list[str]:
        raw = self.properties.get("split_names", "")
        return [s for s in raw.split(",") if s]

    @split_names.setter
    def split_names(self, names: list[str]) -> None:
        self.set("split_names", ",".join(names))

    def split_uri(self, split: str) -> str:
        return f"{self.uri}/Split-{split}"

    def split_prefix(self, split: str) -> str:
        """What a writer of the split's files passes to Beam as their path prefix."""
        return f"{self.split_uri(split)}/{SPLIT_FILE_PREFIX}"

    def split_files(self, split: str) -> str:
        """The glob pattern of the split's data files. Not `*`: the folder may hold more (a Beam job
        that Flink restarted leaves its first attempt's empty beam-temp-* folder there)."""
        return f"{self.split_prefix(split)}*"


class Examples(Artifact):
    TYPE_NAME = "Examples"
    PROPERTIES = {"split_names": STRING, "num_examples": INT, "payload_format": STRING}


class ExampleStatistics(Artifact):
    TYPE_NAME = "ExampleStatistics"
    PROPERTIES = {"split_names": STRING}


class Schema(Artifact):
    TYPE_NAME = "Schema"
    PROPERTIES = {"source": STRING}


class ExampleAnomalies(Artifact):
    TYPE_NAME = "ExampleAnomalies"
    PROPERTIES = {"split_names": STRING, "num_anomalies": INT}


class TransformGraph(Artifact):
    TYPE_NAME = "TransformGraph"


class Model(Artifact):
    TYPE_NAME = "Model"
    PROPERTIES = {"model_name": STRING}


class ModelEvaluation(Artifact):
    TYPE_NAME = "ModelEvaluation"


class ModelBlessing(Artifact):
    TYPE_NAME = "ModelBlessing"
    PROPERTIES = {"blessed": INT, "reason": STRING}


class InfraBlessing(Artifact):
    TYPE_NAME = "InfraBlessing"
    PROPERTIES = {"blessed": INT, "reason": STRING}


class PushedModel(Artifact):
    TYPE_NAME = "PushedModel"
    PROPERTIES = {"pushed": INT, "pushed_version": INT, "pushed_destination": STRING}
