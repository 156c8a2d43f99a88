"""`pytest --cpu-files N` (tests/cpu_time.py): CPU per test file, the subprocesses a test starts included."""

from __future__ import annotations

import re
import sys

import pytest

from tests.conftest import ROOT

pytest_plugins = ["pytester"]

BURN = "import time\nt = time.process_time()\nwhile time.process_time() - t < {seconds}: pass\n"

INNER_TESTS = {
    "test_spawns.py": f"""
import subprocess, sys
def test_a_child_burns_cpu():
    subprocess.run([sys.executable, "-c", {BURN.format(seconds=1.5)!r}], check=True)
""",
    "test_in_process.py": f"""
def test_burns_cpu_itself():
    exec({BURN.format(seconds=0.6)!r})
def test_idle():
    pass
""",
}


def _rows(stdout: str) -> dict[str, tuple[float, float, float, int]]:
    rows = {}
    pattern = r"([\d.]+) s +[\d.]+%  \(in the test process +([\d.]+), subprocesses +([\d.]+)\) +(\d+) tests  (\S+)"
    for match in re.finditer(pattern, stdout):
        total, own, children, tests, path = match.groups()
        rows[path] = (float(total), float(own), float(children), int(tests))
    return rows


@pytest.fixture(autouse=True)
def untraced(untraced_children):
    """The inner pytest runs measure no code of ours: under `make test` coverage would only slow them."""


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["one process", "two xdist workers"])
def test_cpu_per_file_counts_the_subprocesses_a_test_started(pytester, monkeypatch, workers):
    monkeypatch.setenv("PYTHONPATH", ROOT)
    pytester.makepyfile(**INNER_TESTS)
    result = pytester.runpytest_subprocess("-p", "tests.cpu_time", "--cpu-files", "5", *workers)
    result.assert_outcomes(passed=3)
    stdout = result.stdout.str()
    assert "CPU by test file" in stdout, stdout
    rows = _rows(stdout)
    assert set(rows) == {"test_spawns.py", "test_in_process.py"}, stdout
    spawn_total, _, spawn_children, spawn_tests = rows["test_spawns.py"]
    inner_total, inner_own, inner_children, inner_tests = rows["test_in_process.py"]
    assert spawn_children >= 1.4 and spawn_tests == 1  # the child's 1.5 s, counted when it was waited for
    assert inner_own >= 0.55 and inner_children < 0.3 and inner_tests == 2
    summary = stdout[stdout.index("CPU by test file") :]
    assert summary.index("test_spawns.py") < summary.index("test_in_process.py")  # largest first


def test_without_the_option_nothing_is_printed(pytester, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", ROOT)
    pytester.makepyfile(test_one="def test_one():\n    pass\n")
    result = pytester.runpytest_subprocess("-p", "tests.cpu_time")
    result.assert_outcomes(passed=1)
    assert "CPU by test file" not in result.stdout.str()


def test_the_plugin_is_what_the_suite_loads():
    import tests.conftest

    assert "tests.cpu_time" in tests.conftest.pytest_plugins
    assert sys.modules.get("tests.cpu_time") is not None
