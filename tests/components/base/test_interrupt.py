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


def test_the_handler_before_is_back_afterwards_and_an_inner_block_changes_nothing():
    def own(*_):
        raise AssertionError("not called")

    before = signal.signal(signal.SIGTERM, own)  # e.g. coverage.py's, in the suite's subprocesses
    try:
        with sigterm_interrupts():
            ours = signal.getsignal(signal.SIGTERM)
            assert ours is not own
            with sigterm_interrupts():
                assert signal.getsignal(signal.SIGTERM) is ours
            assert signal.getsignal(signal.SIGTERM) is ours  # the outer block's, not `own`
        assert signal.getsignal(signal.SIGTERM) is own
    finally:
        signal.signal(signal.SIGTERM, before)


def test_a_handler_set_before_does_not_stop_the_orderly_exit():
    """coverage.py's `sigterm = true` sets one in every subprocess the suite starts; it must not win."""
    child = "import signal, sys; signal.signal(signal.SIGTERM, lambda *_: sys.exit(99))\n" + CHILD
    result = subprocess.run([sys.executable, "-c", child, "once"], capture_output=True, text=True, timeout=60)
    assert result.returncode == EXIT_TERMINATED, result.stderr
    assert result.stdout.split() == ["cleanup", "ran", "terminated"]


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


def test_the_processes_children_get_the_sigterm_too():
    """As a terminal sends Ctrl-C to the whole job: a child that would otherwise outlive the run stops."""
    child = (
        "import os, signal, subprocess, sys\n"
        "from components.base.interrupt import Terminated, sigterm_interrupts\n"
        "sleeper = subprocess.Popen(['sleep', '30'])\n"
        "try:\n"
        "    with sigterm_interrupts():\n"
        "        os.kill(os.getpid(), signal.SIGTERM)\n"
        "except Terminated:\n"
        "    print(sleeper.wait(timeout=10))\n"
    )
    result = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == str(-signal.SIGTERM), result.stderr
