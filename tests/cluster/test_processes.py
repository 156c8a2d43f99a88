"""cluster/processes.py against real processes: this one, a running child, a zombie and a reaped one."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import pytest

from cluster.processes import alive, cmdline, free_ports, quiet_python_env, start_time


def _zombie_of(child: subprocess.Popen) -> None:
    """Wait until `child` has exited without reaping it (its /proc entry says Z)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with open(f"/proc/{child.pid}/stat") as f:
            if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                return
        time.sleep(0.02)
    raise AssertionError(f"child {child.pid} did not exit")


def test_a_running_process_is_alive_with_a_fixed_start_time_and_its_command_line():
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)", "marker-7431"])
    try:
        assert alive(child.pid) and alive(os.getpid())
        assert start_time(child.pid) == start_time(child.pid) is not None
        assert int(start_time(child.pid)) >= int(start_time(os.getpid()))  # started after this process
        deadline = time.monotonic() + 10  # the child shows its own command line once it has exec'd
        while "marker-7431" not in cmdline(child.pid) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert "marker-7431" in cmdline(child.pid)
    finally:
        child.kill()
        child.wait()


def test_an_exited_process_is_not_alive_whether_reaped_or_a_zombie():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        _zombie_of(child)
        assert not alive(child.pid) and start_time(child.pid) is None
    finally:
        child.wait()
    assert not alive(child.pid) and start_time(child.pid) is None and cmdline(child.pid) == ""
    assert not alive(None) and not alive(0) and start_time(None) is None


def test_free_ports_are_different_and_can_be_bound():
    ports = free_ports(5)
    assert len(set(ports)) == 5
    for port in ports:
        with socket.socket() as s:
            s.bind(("127.0.0.1", port))


def _stderr_of_importing_google_api_core(env: dict) -> str:
    code = "import google.api_core"
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60).stderr


def test_quiet_python_env_silences_the_google_version_notice_and_keeps_the_users_settings(monkeypatch):
    monkeypatch.delenv("PYTHONWARNINGS", raising=False)
    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL", raising=False)
    loud = _stderr_of_importing_google_api_core(dict(os.environ))
    if "FutureWarning" not in loud:
        pytest.skip("this google-api-core prints no Python-version notice for this Python")
    quiet = quiet_python_env()
    assert quiet["TF_CPP_MIN_LOG_LEVEL"] == "3"
    assert "FutureWarning" not in _stderr_of_importing_google_api_core({**os.environ, **quiet})

    # The user's own filters and log level stay, the notice's filter is added once however often it is applied.
    monkeypatch.setenv("PYTHONWARNINGS", "error::DeprecationWarning")
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "1")
    quiet = quiet_python_env()
    assert quiet["TF_CPP_MIN_LOG_LEVEL"] == "1"
    assert quiet["PYTHONWARNINGS"].split(",")[0] == "error::DeprecationWarning"
    monkeypatch.setenv("PYTHONWARNINGS", quiet["PYTHONWARNINGS"])
    assert quiet_python_env()["PYTHONWARNINGS"] == quiet["PYTHONWARNINGS"]
