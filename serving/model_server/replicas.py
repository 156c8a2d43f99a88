"""--replicas N: N model-server processes on the same ports, supervised.

Each replica is a whole server (its own interpreter, so N interpreter locks) that binds the
REST and gRPC ports with SO_REUSEPORT; the kernel spreads new connections across them. Every
replica polls the model directory itself, so all pick up new versions. This process only
supervises: a replica that exits is started again (after a back-off that grows while it keeps
dying young), and SIGTERM / Ctrl-C stops them all. Connections live on one replica: a client
whose replica dies sees its in-flight requests fail and reconnects to another.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import subprocess
import sys
import threading
import time

from serving.model_server.process import free_port

log = logging.getLogger("serving.model_server.replicas")

# More replicas than this per CPU are refused: each loads TensorFlow and every model on its own, and
# beyond a few per core they only compete for it (a mistyped 1000 started a thousand TensorFlows).
MAX_PER_CPU = 4


def replicas_problem(replicas: int) -> str | None:
    """Why `replicas` server processes will not be started here (one line), or None."""
    cpus = os.cpu_count() or 1
    if replicas < 1:
        return f"--replicas must be >= 1, got {replicas}"
    if replicas > MAX_PER_CPU * cpus:
        return (
            f"--replicas {replicas} is more than {MAX_PER_CPU} per CPU ({cpus} here): each replica loads "
            "TensorFlow and every model on its own, and more would only compete for the cores"
        )
    return None


YOUNG_S = 10.0  # a replica that dies sooner than this after starting counts towards the back-off
MAX_BACKOFF_S = 30.0


def _without(argv: list[str], names: tuple[str, ...]) -> list[str]:
    """argv without the given --flags and their values (both `--flag value` and `--flag=value`)."""
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
            continue
        name = arg.split("=", 1)[0]
        if name in names:
            skip = "=" not in arg
            continue
        out.append(arg)
    return out


def replica_argv(argv: list[str], args: argparse.Namespace) -> list[str]:
    """One replica's command line: the supervisor's, with fixed ports (a port of 0 is chosen once
    here, so every replica binds the same one) and SO_REUSEPORT."""
    grpc_port = args.port or free_port(args.host)
    rest_port = args.rest_api_port if args.rest_api_port != 0 else free_port(args.host)
    rest = _without(argv, ("--replicas", "--port", "--rest_api_port", "--reuse_port"))
    return [
        sys.executable,
        "-m",
        "serving.model_server",
        *rest,
        "--port",
        str(grpc_port),
        "--rest_api_port",
        str(rest_port),
        "--reuse_port",
    ]


class Supervisor:
    def __init__(self, command: list[str], replicas: int) -> None:
        self.command = command
        self.replicas = replicas
        self.processes: list[subprocess.Popen | None] = [None] * replicas
        self.started = [0.0] * replicas
        self.failures = [0] * replicas  # consecutive young deaths
        self.not_before = [0.0] * replicas
        self.restarts = 0
        self.stopping = threading.Event()

    def _start(self, index: int) -> None:
        process = self.processes[index] = subprocess.Popen(self.command)
        self.started[index] = time.monotonic()
        log.info("replica %d: pid %d", index, process.pid)

    def check(self) -> None:
        """Starts replicas that are not running (and whose back-off has passed)."""
        now = time.monotonic()
        for index, process in enumerate(self.processes):
            if process is not None and process.poll() is None:
                continue
            if process is not None:
                young = now - self.started[index] < YOUNG_S
                self.failures[index] = self.failures[index] + 1 if young else 0
                backoff = min(MAX_BACKOFF_S, 0.5 * 2 ** self.failures[index]) if self.failures[index] else 0.0
                log.warning(
                    "replica %d (pid %d) exited with %s; restarting%s",
                    index,
                    process.pid,
                    process.returncode,
                    f" in {backoff:.1f}s" if backoff else "",
                )
                self.not_before[index] = now + backoff
                self.processes[index] = None
                self.restarts += 1
            if now >= self.not_before[index]:
                self._start(index)

    def run(self, poll_s: float = 0.2) -> int:
        for index in range(self.replicas):
            self._start(index)
        while not self.stopping.wait(poll_s):
            self.check()
        self.stop()
        return 0

    def stop(self, timeout: float = 15.0) -> None:
        running = [p for p in self.processes if p is not None and p.poll() is None]
        for process in running:
            process.terminate()
        deadline = time.monotonic() + timeout
        for process in running:
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def supervise(argv: list[str], args: argparse.Namespace) -> int:
    command = replica_argv(argv, args)
    supervisor = Supervisor(command, args.replicas)
    signal.signal(signal.SIGTERM, lambda *_: supervisor.stopping.set())
    signal.signal(signal.SIGINT, lambda *_: supervisor.stopping.set())
    port = command[command.index("--port") + 1]
    rest_port = command[command.index("--rest_api_port") + 1]
    log.info("%d replicas sharing gRPC port %s and REST port %s", args.replicas, port, rest_port)
    return supervisor.run()
