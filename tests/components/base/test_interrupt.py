"""SIGTERM inside `sigterm_interrupts()` unwinds like Ctrl-C; outside it, and a second time, it ends the process."""

import signal
import subprocess
import sys
import threading

from components.base.interrupt import EXIT_TERMINATED, Terminated, sigterm_interrupts

# A child that SIGTERMs itself inside the block, then (optionally) again while cleaning up.
CHILD = """
import os, signal, sys, time
from components.base.interrupt import Terminated, sigterm_interrupts
twice = sys.argv[1] == "twice"
try:
    with sigterm_interrupts():
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(30)
        finally:
            print("cleanup ran", flush=True)
            if twice:
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(30)
                print("cleanup finished", flush=True)
except Terminated:
    print("terminated", flush=True)
    sys.exit(143)
"""


def _child(mode: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", CHILD, mode], capture_output=True, text=True, timeout=60)


def test_the_first_sigterm_runs_the_cleanup_and_is_reported():
    result = _child("once")
    assert result.returncode == EXIT_TERMINATED, result.stderr
    assert result.stdout.split() == ["cleanup", "ran", "terminated"]


def test_a_second_sigterm_ends_the_process_at_once():
    result = _child("twice")
    assert result.returncode == -signal.SIGTERM, result.stderr
    assert "cleanup ran" in result.stdout and "cleanup finished" not in result.stdout


def test_the_previous_handler_is_restored_and_an_existing_one_kept():
    def own(*_):
        raise AssertionError("not called")

    before = signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        with sigterm_interrupts():
            assert signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
        signal.signal(signal.SIGTERM, own)
        with sigterm_interrupts():
            assert signal.getsignal(signal.SIGTERM) is own  # a server's own handler stays
    finally:
        signal.signal(signal.SIGTERM, before)


def test_off_the_main_thread_it_changes_nothing():
    seen = []

    def body():
        with sigterm_interrupts():
            seen.append(signal.getsignal(signal.SIGTERM))

    thread = threading.Thread(target=body)
    thread.start()
    thread.join()
    assert seen == [signal.getsignal(signal.SIGTERM)]
    assert issubclass(Terminated, KeyboardInterrupt)  # every `except KeyboardInterrupt` cleanup applies
