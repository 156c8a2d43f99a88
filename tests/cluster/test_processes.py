"""cluster/processes.py against real processes: this one, a running child, a zombie and a reaped one."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

from cluster.processes import alive, cmdline, free_ports, start_time


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
