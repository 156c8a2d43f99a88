"""A coverage.py plugin (`[tool.coverage.run] plugins` in pyproject.toml) that stops tracing while a large
third-party package is first imported, in every process coverage measures (the test workers and the
servers, pipelines and CLIs they start).

Why: on Python 3.11 coverage can only trace through `sys.settrace`, and a trace function slows every
Python frame it sees, measured or not: `import tensorflow, tf_keras` takes 1.4 times the CPU with
coverage on (BENCHMARKS.md, "Coverage's cost"), although none of those lines is ours. A process that
imports TensorFlow, Beam and TFDV pays that on each start. None of our code runs inside those imports,
so nothing measured is lost: tracing resumes in the importing frame as soon as the import returns.

It registers no coverage plugin object: loading it is the point (coverage imports the module named in
its configuration in each process it starts in, subprocesses included). A process that cannot import
`tests` (tests/conftest.py puts the checkout on PYTHONPATH for every process a test starts) runs
unmeasured, after coverage prints why. One kind does: the Beam SDK workers under Flink, which
cluster/beam_boot.py starts without PYTHONPATH so that they import the staged wheel. Only
`make coverage` traces them; under `make test` the Flink tests, slow ones, run their processes untraced
(tests/conftest.py).
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
import types

# Top-level packages whose first import is run untraced. Only third-party code: a package of ours here
# would lose the coverage of its module-level lines.
UNTRACED_IMPORTS = frozenset(
    {
        "tensorflow",
        "tf_keras",
        "keras",
        "apache_beam",
        "tensorflow_data_validation",
        "tensorflow_transform",
        "tensorflow_metadata",
        "tensorflow_serving",
        "tfx_bsl",
        "ml_metadata",
        "pyarrow",
        "pandas",
        "numpy",
        "scipy",
        "matplotlib",
        "grpc",
        "PIL",
        "flask",
        "aiohttp",
        "hypothesis",
    }
)


class _UntracedLoader(importlib.abc.Loader):
    """The real loader, its module executed with this thread's trace function off."""

    def __init__(self, loader: importlib.abc.Loader) -> None:
        self._loader = loader

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType | None:
        return self._loader.create_module(spec)

    def exec_module(self, module: types.ModuleType) -> None:
        tracer = sys.gettrace()
        sys.settrace(None)
        try:
            self._loader.exec_module(module)
        finally:
            sys.settrace(tracer)
            module.__loader__ = self._loader  # what the package's own code expects to find there

    def __getattr__(self, name: str):  # get_data, get_resource_reader, is_package, ...
        return getattr(self._loader, name)


class _UntracedImports(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if path is not None or name not in UNTRACED_IMPORTS or sys.gettrace() is None:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None:
                if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                    spec.loader = _UntracedLoader(spec.loader)
                return spec
        return None


def install() -> None:
    if not any(isinstance(finder, _UntracedImports) for finder in sys.meta_path):
        sys.meta_path.insert(0, _UntracedImports())


def coverage_init(reg, options) -> None:
    """coverage's entry point for a plugin module: installs the import hook, registers nothing."""
    install()
