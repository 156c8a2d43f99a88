"""Component declarations: typed inputs, outputs and parameters.

A component class states its contract in a `SPEC` and names the executor
that does the work. An instance wires that contract into a pipeline:
its inputs are `Channel`s produced by other components' outputs.
"""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
import json
import os
from collections.abc import Callable
from typing import Any, ClassVar

from components.base.artifacts import Artifact
from components.base.functions import code_fingerprint, data_fingerprint, load_function

_MISSING = object()


def at_least(low: float) -> Callable[[Any], str | None]:
    """A Parameter check: the value is `low` or more."""
    return lambda value: None if value >= low else f"must be >= {low}, got {value!r}"


def within(low: float, high: float) -> Callable[[Any], str | None]:
    """A Parameter check: the value is in [low, high] (NaN is not)."""
    return lambda value: None if low <= value <= high else f"must be within [{low}, {high}], got {value!r}"


@dataclasses.dataclass(frozen=True)
class Parameter:
    """An execution parameter: its Python type, default, and whether it is required."""

    type: type | tuple[type, ...]
    default: Any = _MISSING
    doc: str = ""
    # Names user code as `module.path:function`: that module's source (and the first-party
    # modules it imports) enters the cache key.
    user_code: bool = False
    # Names a file or folder the executor reads: its content, not its path, enters the cache key
    # (`components.base.functions.data_fingerprint`), so data edited in place runs again.
    data_path: bool = False
    # The value's own check, run when the component is declared (so a bad value stops a pipeline
    # before anything runs or is recorded): what is wrong with it, or None.
    check: Callable[[Any], str | None] | None = None

    @property
    def required(self) -> bool:
        return self.default is _MISSING


@dataclasses.dataclass(frozen=True)
class InputSpec:
    type: type[Artifact]
    optional: bool = False


@dataclasses.dataclass(frozen=True)
class ComponentSpec:
    inputs: dict[str, InputSpec] = dataclasses.field(default_factory=dict)
    outputs: dict[str, type[Artifact]] = dataclasses.field(default_factory=dict)
    parameters: dict[str, Parameter] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class Channel:
    """The output `key` of component `producer_id`, carrying artifacts of `type`."""

    type: type[Artifact]
    producer_id: str
    key: str


class ExecutorRef:
    """A component's executor named as "module.path:Class" and imported when first used.

    component.py then need not import executor.py, so executor.py can import its component's key
    constants (TFX keeps those in a separate module for the same reason). Reading
    `Component.EXECUTOR` gives the class itself."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __get__(self, instance: object, owner: type | None = None) -> type:
        executor = load_function(self.path)
        if not isinstance(executor, type):
            raise TypeError(f"{self.path} is not a class")
        return executor


class BaseComponent:
    """A node of the pipeline DAG. Subclasses set SPEC and EXECUTOR."""

    SPEC: ClassVar[ComponentSpec] = ComponentSpec()
    EXECUTOR: ClassVar[Any] = None  # a BaseExecutor subclass, or an ExecutorRef naming one
    CACHEABLE: ClassVar[bool] = True  # False for components whose effect lies outside their outputs

    def __init__(self, *, id: str | None = None, **kwargs: Any) -> None:  # noqa: A002 - TFX's name for it
        self.id = id or type(self).__name__
        self.beam_pipeline_args: list[str] = []
        self.inputs: dict[str, Channel] = {}
        self.parameters: dict[str, Any] = {}
        spec = self.SPEC
        unknown = set(kwargs) - set(spec.inputs) - set(spec.parameters)
        if unknown:
            raise TypeError(f"{self.id}: unknown argument(s) {sorted(unknown)}")
        for name, input_spec in spec.inputs.items():
            channel = kwargs.get(name)
            if channel is None:
                if not input_spec.optional:
                    raise TypeError(f"{self.id}: input {name!r} is required")
                continue
            if not isinstance(channel, Channel):
                raise TypeError(f"{self.id}: input {name!r} must be a Channel, got {type(channel).__name__}")
            if not issubclass(channel.type, input_spec.type):
                raise TypeError(
                    f"{self.id}: input {name!r} takes {input_spec.type.TYPE_NAME}, got {channel.type.TYPE_NAME}"
                )
            self.inputs[name] = channel
        for name, param in spec.parameters.items():
            value = kwargs.get(name, param.default)
            if value is _MISSING:
                raise TypeError(f"{self.id}: parameter {name!r} is required")
            if value is not None and not isinstance(value, param.type):
                raise TypeError(f"{self.id}: parameter {name!r} must be {param.type}, got {value!r}")
            problem = None if value is None or param.check is None else param.check(value)
            if problem:
                raise ValueError(f"{self.id}: parameter {name!r} {problem}")
            self.parameters[name] = value
        self.outputs = {key: Channel(type=t, producer_id=self.id, key=key) for key, t in spec.outputs.items()}

    def with_beam_pipeline_args(self, args: list[str]) -> "BaseComponent":
        """Beam options for this component only (e.g. more workers for CPU-heavy rendering).

        The runner's options (the command line's) come after them, so a user's
        choice wins; they do not enter the cache key: they change how, not what.
        """
        self.beam_pipeline_args = list(args)
        return self

    def gate(self, outputs: dict[str, list[Artifact]]) -> str | None:
        """After an execution (or a cache hit): a message here stops the pipeline run.

        The execution and its outputs stay published: the verdict is data
        (e.g. anomalies), and a re-run reaches the same verdict from the cache.
        """
        return None

    @property
    def upstream_ids(self) -> set[str]:
        return {channel.producer_id for channel in self.inputs.values()}

    def parameters_fingerprints(self) -> tuple[str, str]:
        """Stable texts of the parameters: (recorded with the execution, hashed into the cache key).
        Both carry the source fingerprint of the user code that `user_code` parameters name and
        the content fingerprint of the data that `data_path` parameters name; the key's leaves
        those parameters' paths out: where data lies changes nothing a run makes."""
        code, data = {}, {}
        for name, value in self.parameters.items():
            spec = self.SPEC.parameters[name]
            if spec.user_code and isinstance(value, str):
                code[name] = code_fingerprint(value)
            elif spec.data_path and isinstance(value, str):
                data[name] = data_fingerprint(value)
        extra = {"data": data} if data else {}

        def text(parameters: dict[str, Any]) -> str:
            return json.dumps({"parameters": parameters, "user_code": code, **extra}, sort_keys=True, default=repr)

        return text(self.parameters), text({k: v for k, v in self.parameters.items() if k not in data})

    @classmethod
    def code_version(cls) -> str:
        """A hash of the source that defines this component and its executor.

        A component folder (component.py + executor.py + helpers) is hashed
        whole; a component defined elsewhere hashes its own module file.
        """
        files: set[str] = set()
        for obj in (cls, cls.EXECUTOR):
            if obj is None:
                continue
            path = inspect.getsourcefile(obj)
            if path is None:
                continue
            if os.path.basename(path) in ("component.py", "executor.py"):
                folder = os.path.dirname(path)
                files.update(os.path.join(folder, f) for f in os.listdir(folder) if f.endswith(".py"))
            else:
                files.add(path)
        digest = hashlib.sha256()
        for path in sorted(files):
            digest.update(os.path.basename(path).encode())
            with open(path, "rb") as f:
                digest.update(f.read())
        return digest.hexdigest()[:16]

    def __repr__(self) -> str:
        return f"{type(self).__name__}(id={self.id!r})"
