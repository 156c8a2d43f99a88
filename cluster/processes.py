"""Processes on this machine, read from Linux's /proc, and ports free on it: one home for what the Flink
cluster, the two-worker Trainer and the pipeline runner's crash bookkeeping ask about them. Light: no
imports beyond the standard library, so `python -m cluster.flink fetch` stays quick."""

from __future__ import annotations

import contextlib
import os
import socket


def _stat(pid: int | None) -> list[str] | None:
    """/proc/PID/stat's fields after the command name (which may hold spaces and parentheses), or None
    when there is no such process."""
    if not pid:
        return None
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def alive(pid: int | None) -> bool:
    """Whether process `pid` runs: it exists and is not a zombie (exited, not yet reaped)."""
    fields = _stat(pid)
    return fields is not None and fields[0] != "Z"


def start_time(pid: int | None) -> str | None:
    """When process `pid` started (clock ticks since boot, stat's field 22), or None when it does not run.
    A pid with another start time is another process that reused the number."""
    fields = _stat(pid)
    if fields is None or fields[0] == "Z" or len(fields) < 20:
        return None
    return fields[19]


def cmdline(pid: int) -> str:
    """Process `pid`'s command line, its arguments joined by spaces ("" when it does not run)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """`count` ports free on `host` now, all different (bound at once, then let go: whoever binds one next
    may race another process)."""
    with contextlib.ExitStack() as held:
        sockets = [held.enter_context(socket.socket()) for _ in range(count)]
        for s in sockets:
            s.bind((host, 0))
        return [s.getsockname()[1] for s in sockets]


def free_port(host: str = "127.0.0.1") -> int:
    return free_ports(1, host)[0]


GOOGLE_VERSION_NOTICE = "google.api_core._python_version_support"


def quiet_python_env() -> dict[str, str]:
    """Environment for Python processes we start (a pipeline run's Beam and Trainer workers, the Flink
    worker pool and its SDK workers): third-party noise that says nothing about the user's work, off.

    Google client libraries' Python-version notice (four FutureWarnings each time Beam is imported) and
    TensorFlow's C++ start-up banner (cuDNN and cuBLAS "errors" on a machine without a GPU) buried the
    pool's log and every run's output. A TF_CPP_MIN_LOG_LEVEL the user set is kept."""
    notice = f"ignore::FutureWarning:{GOOGLE_VERSION_NOTICE}"
    given = os.environ.get("PYTHONWARNINGS", "")
    return {
        "PYTHONWARNINGS": given if notice in given.split(",") else ",".join(w for w in (given, notice) if w),
        "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "3"),
    }
