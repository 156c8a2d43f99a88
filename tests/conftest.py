import contextlib
import fcntl
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

import components  # noqa: F401 - sets TF_USE_LEGACY_KERAS before any test module imports TensorFlow

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

pytest_plugins = ["tests.cpu_time"]  # --cpu-files N: CPU per test file, subprocesses included

# Every process a test starts can import `tests`, whatever its working directory: under `make test`
# coverage starts in each of them and loads its plugin tests/coverage_imports.py from there.
os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (ROOT, os.environ.get("PYTHONPATH")) if p)

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


class SlowFilesFirst:
    """The test files with a slow test in them run first, each group in its random order.

    `make test` runs the whole suite in one session, a few test files at a time (pytest-xdist, whole
    files in the order collected: `--no-loadscope-reorder`). The slow files are the long ones (a Flink
    cluster's file takes minutes); started first, they overlap the many short files, which fill in
    around them, instead of one of them running alone at the end."""

    # The longest files of all, by their fixtures: a Flink cluster's (4-5 minutes) and two-worker
    # training's (2 minutes); they go before the other slow files.
    LONGEST = frozenset({"flink_cluster", "quick_captcha"})

    @pytest.hookimpl(trylast=True)  # after pytest-random-order's shuffle; the `slow` marks are set by then
    def pytest_collection_modifyitems(self, items):
        rank: dict = {}  # a file's rank: its most urgent test's (0 longest, 1 slow, 2 the rest)
        for item in items:
            own = 0 if self.LONGEST.intersection(item.fixturenames) else 1 if item.get_closest_marker("slow") else 2
            rank[item.path] = min(rank.get(item.path, 2), own)
        items.sort(key=lambda item: rank[item.path])  # a stable sort keeps the random order in each


def pytest_configure(config):
    config.pluginmanager.register(SlowFilesFirst(), "slow-files-first")


@contextlib.contextmanager
def untraced():
    """The processes started inside this block run without coverage, which under `make test` starts
    itself in every Python child through these variables (pyproject.toml: patch = subprocess)."""
    saved = {name: os.environ.pop(name) for name in [n for n in os.environ if n.startswith("COVERAGE_PROCESS_")]}
    try:
        yield
    finally:
        os.environ.update(saved)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item, nextitem):
    """A slow test's processes (its pipeline runs, training workers, Flink's Python workers, the servers
    its fixtures start) run untraced: their code is what the fast tests measure, and tracing them would
    add CPU to the longest tests of `make test` for lines already counted."""
    if item.get_closest_marker("slow") is None:
        return (yield)
    with untraced():
        return (yield)


def run_module(module: str, *args: str, timeout: float = 120, cwd: str | None = None, env: dict | None = None):
    """`python -m MODULE ARGS` as a user runs it, from the checkout (or `cwd`); its output captured."""
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=cwd or ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def pipelines_cli(*args: str, timeout: float = 900, cwd: str | None = None, env: dict | None = None):
    """`python -m pipelines ARGS`, as run_module."""
    return run_module("pipelines", *args, timeout=timeout, cwd=cwd, env=env)


def imported_modules(stderr: str) -> set[str]:
    """The modules a process imported, from Python's -X importtime lines (run it with PYTHONPROFILEIMPORTTIME=1)."""
    return {line.rsplit("|", 1)[1].strip() for line in stderr.splitlines() if line.startswith("import time:")}


def without_import_times(stderr: str) -> str:
    """`stderr` less Python's -X importtime lines: what the process itself wrote."""
    return "\n".join(line for line in stderr.splitlines() if not line.startswith("import time:"))


@pytest.fixture
def untraced_children():
    """The processes this test starts run without coverage (`untraced`)."""
    with untraced():
        yield


@pytest.fixture
def shared_data():
    """../shared/data beside the checkout; tests that need it skip when it is absent."""
    path = os.path.abspath(SHARED_DATA)
    if not os.path.isdir(path):
        pytest.skip(f"shared data not found at {path} (set SHARED_DATA_DIR)")
    return path


def once_per_session(tmp_path_factory, name: str, produce) -> dict:
    """`produce(root)` once for the whole test session, however many pytest-xdist workers ask.

    Each worker has a session of its own, so a session fixture would otherwise run once per worker:
    two quick pipeline runs at once on a 2-core machine where one would do. The first worker to ask
    produces under a lock in the workers' common temporary folder and leaves its result there as
    JSON (a failed run too, so that no worker repeats it); the others wait for the lock and read it.
    `produce` returns a JSON-able dict; its "result" entry, if it has one (the finished subprocess),
    comes back as a CompletedProcess. Whoever uses the result must not change what it points to
    (copy it first)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    base = tmp_path_factory.getbasetemp()
    if worker is None:  # no workers: this process is the whole session
        return produce(tmp_path_factory.mktemp(name))
    common = base.parent  # pytest-of-<user>/pytest-<n>/, the workers' basetemps are popen-gw<i>/ in it
    stored = common / f"{name}.json"
    with open(common / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes, or when the worker dies
        if not stored.is_file():
            value = produce(Path(tempfile.mkdtemp(prefix=f"{name}-", dir=common)))
            if "result" in value:
                result = value["result"]
                value = {**value, "result": [result.args, result.returncode, result.stdout, result.stderr]}
            partial = common / f"{name}.json.partial"
            partial.write_text(json.dumps(value))
            partial.replace(stored)
    value = json.loads(stored.read_text())
    if "result" in value:
        value["result"] = subprocess.CompletedProcess(*value["result"])
    return value


def _quick_captcha(root: Path) -> dict:
    out, serving = str(root / "runs"), str(root / "serving")
    result = pipelines_cli("run", "captcha", "--quick", "--output-dir", out, "--serving-dir", serving)
    return {"out": out, "serving": serving, "result": result}


@pytest.fixture(scope="session")
def captcha_quick_run(tmp_path_factory):
    """One `pipelines run captcha --quick` for the whole session (all workers): its runs/ and its
    serving_models/. Read only: a test that runs more into it works on a copy."""
    run = once_per_session(tmp_path_factory, "captcha-quick", _quick_captcha)
    assert run["result"].returncode == 0, run["result"].stderr[-4000:]
    return run


def _quick_mnist(root: Path) -> dict:
    from tests.pipelines.mnist_data import write_mnist

    # One label in ten is another digit: every run then has misread test examples whose truth is known
    # (the gallery tests), however well the model reads.
    data = write_mnist(str(root / "data"), test_count=800, mislabel=0.1)
    out, serving = str(root / "runs"), str(root / "serving")
    result = pipelines_cli("run", "mnist", "--quick", "--data", data, "--output-dir", out, "--serving-dir", serving)
    return {"data": data, "out": out, "serving": serving, "result": result}


@pytest.fixture(scope="session")
def mnist_quick_run(tmp_path_factory):
    """One `pipelines run mnist --quick` on 800 rendered digits (tests/pipelines/mnist_data.py) for
    the whole session (all workers), so it runs without ../shared: its data folder, runs/ and
    serving_models/. Read only, as captcha_quick_run."""
    run = once_per_session(tmp_path_factory, "mnist-quick", _quick_mnist)
    assert run["result"].returncode == 0, run["result"].stderr[-4000:]
    return run
