"""components.base imports its names when they are first used, so that light commands stay light."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import components.base
from tests.conftest import ROOT


def test_every_exported_name_resolves_to_its_home():
    for name in components.base.__all__:
        value = getattr(components.base, name)
        assert value.__name__ == name and value.__module__.startswith("components.base.")


def test_an_unknown_name_is_an_attribute_error():
    try:
        components.base.NoSuchThing  # noqa: B018 - the attribute access is the test
    except AttributeError as error:
        assert "NoSuchThing" in str(error)
    else:
        raise AssertionError("components.base.NoSuchThing resolved")


def test_the_artifact_types_and_metadata_come_without_tensorflow_or_beam():
    code = (
        "import sys\n"
        "from components.base import Artifact\n"
        "import components.base.interrupt, components.base.tf_errors, pipelines.metadata\n"
        "print(sorted(m for m in ('tensorflow', 'apache_beam') if m in sys.modules))\n"
        "from components.base import fileio\n"  # an executor's import still brings TensorFlow and Beam
        "print(sorted(m for m in ('tensorflow', 'apache_beam') if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.splitlines() == ["[]", "['apache_beam', 'tensorflow']"]


def test_every_contract_module_imports_neither_tensorflow_nor_beam():
    """Components' specs and models' configs are what `pipelines run` checks a --param against before a run
    imports the heavy libraries (docs/architecture.md, "Contracts are plain Python")."""
    root = Path(ROOT)
    files = [
        *root.glob("components/*/component.py"),
        *root.glob("pipelines/*/train_config.py"),
        root / "pipelines" / "training_config.py",
        root / "pipelines" / "stages.py",
    ]
    modules = sorted(".".join(f.relative_to(root).with_suffix("").parts) for f in files)
    assert len(modules) >= 12, modules  # the globs found the tree
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "print(sorted(m for m in ('tensorflow', 'apache_beam', 'tensorflow_data_validation') if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "[]"
