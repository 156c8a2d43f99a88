"""SIGTERM as an orderly interrupt: what Ctrl-C does, for `kill`, service managers and CI timeouts.

By default SIGTERM ends a Python process on the spot: no `finally` runs, so
worker processes, their network namespaces and a RUNNING execution in ML
Metadata are left behind. Inside `sigterm_interrupts()` the first SIGTERM
raises `Terminated` (a KeyboardInterrupt) in the main thread instead, and
everything unwinds as it does for Ctrl-C. A second SIGTERM ends the process
at once, as before, for a cleanup that hangs.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

EXIT_TERMINATED = 128 + signal.SIGTERM  # what a shell reports for a process SIGTERM ended


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived inside `sigterm_interrupts()`."""


def _raise_terminated(signum: int, frame: object) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a second SIGTERM ends the process at once
    raise Terminated("SIGTERM")


@contextlib.contextmanager
def sigterm_interrupts() -> Iterator[None]:
    """Turn SIGTERM into `Terminated` while the block runs; a no-op off the main thread or where
    someone else already handles SIGTERM (an outer block, a server's own handler)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
