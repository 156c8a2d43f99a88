"""User code named in parameters as `module.path:function` (run_fn, evaluate_fn, preprocessing_fn)."""
from __future__ import annotations

import importlib


def load_function(path: str):
    module_name, sep, name = path.partition(":")
    if not sep or not module_name or not name:
        raise ValueError(f"expected 'module.path:function', got {path!r}")
    return getattr(importlib.import_module(module_name), name)
