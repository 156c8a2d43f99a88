"""components.base imports its names when they are first used, so that light commands stay light."""

from __future__ import annotations

import os
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


def _without_keras_setting() -> dict:
    return {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}


def test_each_top_level_package_chooses_keras_2_unless_the_user_chose():
    env = _without_keras_setting()
    for package in ("components", "pipelines", "serving", "cluster", "bench"):
        code = f"import os, {package}; print(os.environ.get('TF_USE_LEGACY_KERAS'))"
        result = subprocess.run(
            [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
        )
        assert (result.returncode, result.stdout.strip()) == (0, "1"), (package, result.stderr[-2000:])
    code = "import os, serving; print(os.environ.get('TF_USE_LEGACY_KERAS'))"
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**env, "TF_USE_LEGACY_KERAS": "0"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.stdout.strip() == "0"


def test_tensorflow_comes_without_keras_3():
    """TensorFlow 2.16 imports Keras 3 whole (0.65 s, with pandas) unless TF_USE_LEGACY_KERAS is set before
    it is imported (components/__init__.py): the model server's process has tf_keras as tf.keras and no Keras 3."""
    code = (
        "import sys\n"
        "import serving.model_server.manager\n"
        "import tensorflow as tf\n"
        "print(tf.keras.__name__.split('.')[0], 'keras' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=_without_keras_setting(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["tf_keras", "False"]
