"""Splits by a stable hash of each example's key, never by position.

The same key lands in the same split on every run, runner and worker count.
"""

from __future__ import annotations

import dataclasses
import hashlib

DEFAULT_SPLITS = "train:8,eval:1,test:1"


@dataclasses.dataclass(frozen=True)
class SplitConfig:
    names: tuple[str, ...]
    weights: tuple[int, ...]

    @classmethod
    def parse(cls, text: str) -> "SplitConfig":
        """`train:8,eval:1,test:1` -> names and integer weights."""
        names, weights = [], []
        for part in text.split(","):
            name, sep, weight = part.strip().partition(":")
            if not sep or not name or not weight.strip().isdigit() or int(weight) <= 0:
                raise ValueError(f"splits must look like 'train:8,eval:1,test:1', got {text!r}")
            names.append(name.strip())
            weights.append(int(weight))
        if len(set(names)) != len(names):
            raise ValueError(f"split names repeat in {text!r}")
        return cls(tuple(names), tuple(weights))

    def index_for(self, key: str) -> int:
        bucket = int.from_bytes(hashlib.sha256(key.encode("utf-8")).digest()[:8], "big") % sum(self.weights)
        for index, weight in enumerate(self.weights):
            if bucket < weight:
                return index
            bucket -= weight
        raise AssertionError("unreachable")
