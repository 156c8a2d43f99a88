"""SIGTERM as an orderly interrupt: what Ctrl-C does, for `kill`, service managers and CI timeouts.

By default SIGTERM ends a Python process on the spot: no `finally` runs, so
worker processes, their network namespaces and a RUNNING execution in ML
Metadata are left behind. Inside `sigterm_interrupts()` the first SIGTERM
raises `Terminated` (a KeyboardInterrupt) in the main thread instead, and
everything unwinds as it does for Ctrl-C; the process's children get the
SIGTERM too, as a terminal sends Ctrl-C to the whole job. A second SIGTERM ends
the process at once, as before, for a cleanup that hangs.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
from collections.abc import Callable, Iterator

log = logging.getLogger(__name__)

EXIT_TERMINATED = 128 + signal.SIGTERM  # what a shell reports for a process SIGTERM ended


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived inside `sigterm_interrupts()`."""


def _descendants(pid: int) -> list[int]:
    """The processes below `pid` (children, theirs, ...), read from /proc; none where there is no /proc."""
    children: dict[int, list[int]] = {}
    with contextlib.suppress(OSError):
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rpartition(")")[2].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


_terminating = threading.Event()


def _quiet_after_sigterm(
    hook: Callable[[threading.ExceptHookArgs], object],
) -> Callable[[threading.ExceptHookArgs], None]:
    """`hook`, except that once SIGTERM has stopped the run a thread that dies of it (Beam's
    `run_worker`: "Worker subprocess exited with return code -15") is the stop's echo: logged at
    debug level, not printed as a traceback."""

    def excepthook(args: threading.ExceptHookArgs) -> None:
        if _terminating.is_set():
            log.debug("after SIGTERM, thread %s ended: %r", args.thread.name if args.thread else "?", args.exc_value)
            return
        hook(args)

    return excepthook


def _raise_terminated(signum: int, frame: object) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a second SIGTERM ends the process at once
    _terminating.set()
    # Passed on to this process's own children, as a terminal passes Ctrl-C to the whole job: Beam's
    # SDK workers, for one, wait for their control stream forever if the job ends while they start.
    for child in _descendants(os.getpid()):
        with contextlib.suppress(OSError):
            os.kill(child, signal.SIGTERM)
    raise Terminated("SIGTERM")


@contextlib.contextmanager
def sigterm_interrupts() -> Iterator[None]:
    """Turn SIGTERM into `Terminated` while the block runs; the handler before it is back afterwards.

    A handler already set is replaced for the block, not chained: the usual one is coverage.py's
    (`sigterm = true`), which saves its data and ends the process, and a process that unwinds and
    exits saves that data anyway. A no-op off the main thread (Python runs handlers only there)
    and inside an outer block, whose second-SIGTERM rule stays in force."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    if signal.getsignal(signal.SIGTERM) is _raise_terminated:
        yield
        return
    previous, previous_hook = signal.signal(signal.SIGTERM, _raise_terminated), threading.excepthook
    threading.excepthook = _quiet_after_sigterm(previous_hook)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
        threading.excepthook = previous_hook
        _terminating.clear()
