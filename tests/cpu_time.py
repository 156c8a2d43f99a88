"""CPU seconds per test file, the processes a test starts included: `pytest --cpu-files N`.

The suite is bound by CPU, not by waiting (BENCHMARKS.md, issue #16), and most of that CPU is
spent in the servers, pipelines and workers the tests start as subprocesses, which `--durations`
shows only as wall time. Each test's report carries the CPU its process used during it (user and
system) and the CPU of the child processes that ended and were waited for during it (a server a
session fixture keeps counts when the fixture stops it, at the end of that worker's last test).
Processes that detach and are never waited for are not counted: the Flink cluster's JVMs, which
Flink's scripts start as daemons, so the Flink tests show only their own share.
pytest-xdist sends the reports to the controller, which sums them per file and prints the N
largest after the run, with the share of the whole.
"""

from __future__ import annotations

import resource
from collections import defaultdict

import pytest

KEY = "cpu_s"


def _cpu() -> tuple[float, float]:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime, children.ru_utime + children.ru_stime


def pytest_addoption(parser):
    parser.addoption(
        "--cpu-files",
        type=int,
        default=0,
        metavar="N",
        help="after the run, the N test files that used the most CPU (their subprocesses included)",
    )


_last: dict[str, tuple[float, float]] = {}  # test id -> the CPU counters when its last phase ended
_by_file: defaultdict[str, list[float]] = defaultdict(lambda: [0.0, 0.0, 0])  # file -> [own, children, tests]


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    _last[item.nodeid] = _cpu()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    before = _last.get(item.nodeid)
    if before is None:  # setup never ran its hook (skipped by a mark before it)
        return
    now = _cpu()
    if call.when == "teardown":
        del _last[item.nodeid]
    else:
        _last[item.nodeid] = now
    outcome.get_result().user_properties.append((KEY, (now[0] - before[0], now[1] - before[1])))


def pytest_runtest_logreport(report):
    for name, value in report.user_properties:
        if name == KEY:
            entry = _by_file[report.nodeid.split("::")[0]]
            entry[0] += value[0]
            entry[1] += value[1]
            entry[2] += report.when == "call"


def pytest_terminal_summary(terminalreporter, config):
    count = config.getoption("cpu_files")
    if not count or not _by_file:
        return
    total = sum(own + children for own, children, _ in _by_file.values())
    terminalreporter.write_sep("=", f"CPU by test file: {total:.0f} s in all, the {count} largest")
    ranked = sorted(_by_file.items(), key=lambda kv: -(kv[1][0] + kv[1][1]))[:count]
    for path, (own, children, tests) in ranked:
        share = 100 * (own + children) / total if total else 0.0
        terminalreporter.write_line(
            f"{own + children:7.1f} s {share:4.1f}%  (in the test process {own:6.1f}, subprocesses {children:6.1f})"
            f"  {int(tests):3d} tests  {path}"
        )
