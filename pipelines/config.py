"""Typed pipeline configs: dataclass defaults, overridden by `--param NAME=VALUE`."""

from __future__ import annotations

import dataclasses
import math
import types
import typing


def _convert(name: str, text: str, kind):
    if kind is bool:
        lowered = text.strip().lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"--param {name}: expected true/false, got {text!r}")
    try:
        value = kind(text)
    except ValueError:
        raise ValueError(f"--param {name}: expected {kind.__name__}, got {text!r}") from None
    if kind is float and not math.isfinite(value):  # ML Metadata cannot even record inf or nan
        raise ValueError(f"--param {name}: expected a finite number, got {text!r}")
    return value


def apply_overrides(config, params: dict[str, str]):
    """A copy of `config` with `params` (strings from the command line) converted to field types."""
    hints = typing.get_type_hints(type(config))
    fields = {f.name for f in dataclasses.fields(config)}
    changes = {}
    for name, text in params.items():
        if name not in fields:
            raise ValueError(f"unknown parameter {name!r}; known: {', '.join(sorted(fields))}")
        kind = hints[name]
        origin = typing.get_origin(kind)
        if origin in (typing.Union, types.UnionType):  # Optional[X] and X | None
            kind = next(a for a in typing.get_args(kind) if a is not type(None))
        changes[name] = _convert(name, text, kind)
    return dataclasses.replace(config, **changes)
