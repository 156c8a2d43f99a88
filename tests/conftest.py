import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SHARED_DATA = os.environ.get("SHARED_DATA_DIR", os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data"))


# What makes a test slow here: a whole pipeline run, training, a Flink cluster or a MariaDB server
# behind it (these fixtures; a few tests carry @pytest.mark.slow themselves). `make test` (CI) runs
# everything; `make test-fast` leaves these out (pytest -m "not slow").
SLOW_FIXTURES = frozenset(
    {"captcha_quick_run", "mnist_quick_run", "flink_cluster", "mariadb", "quick_captcha", "house_run"}
)


def pytest_collection_modifyitems(config, items):
    for item in items:
        if SLOW_FIXTURES.intersection(item.fixturenames):
            item.add_marker(pytest.mark.slow)


@pytest.fixture
def shared_data():
    """../shared/data beside the checkout; tests that need it skip when it is absent."""
    path = os.path.abspath(SHARED_DATA)
    if not os.path.isdir(path):
        pytest.skip(f"shared data not found at {path} (set SHARED_DATA_DIR)")
    return path


@pytest.fixture(scope="session")
def captcha_quick_run(tmp_path_factory):
    """One `pipelines run captcha --quick` for the whole session: its runs/ and its serving_models/."""
    root = tmp_path_factory.mktemp("captcha")
    out, serving = str(root / "runs"), str(root / "serving")
    result = subprocess.run(
        [sys.executable, "-m", "pipelines", "run", "captcha", "--quick", "--output-dir", out, "--serving-dir", serving],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    return {"out": out, "serving": serving, "result": result}


@pytest.fixture(scope="session")
def mnist_quick_run(tmp_path_factory):
    """One `pipelines run mnist --quick` on 800 rendered digits (tests/pipelines/mnist_data.py), so
    it runs without ../shared: its data folder, runs/ and serving_models/."""
    from tests.pipelines.mnist_data import write_mnist

    root = tmp_path_factory.mktemp("mnist")
    # One label in ten is another digit: every run then has misread test examples whose truth is known
    # (the gallery tests), however well the model reads.
    data = write_mnist(str(root / "data"), test_count=800, mislabel=0.1)
    out, serving = str(root / "runs"), str(root / "serving")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pipelines",
            "run",
            "mnist",
            "--quick",
            "--data",
            data,
            "--output-dir",
            out,
            "--serving-dir",
            serving,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    return {"data": data, "out": out, "serving": serving, "result": result}
