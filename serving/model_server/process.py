"""A model server in a child process on free 127.0.0.1 ports, ready when both ports answer.

Used by the tests, the benchmarks and `make serve`."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from typing import IO

import requests

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def free_port(host: str = "127.0.0.1") -> int:
    """A port free on `host` now (bound, then let go: whoever binds it next may race another)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class ServerProcess:
    """A free port is picked, then bound by the child: another process may take it in between. When the
    server exits because a port it was given by us is in use, it starts again on fresh ports (twice)."""

    def __init__(self, *flags: str, log_path: str, grpc_port: int = 0, rest_port: int = 0) -> None:
        self.flags, self.log_path = flags, log_path
        self._picked = {"grpc": not grpc_port, "rest": not rest_port}
        self.grpc_port, self.rest_port = grpc_port or free_port(), rest_port or free_port()
        self._log: IO[str] | None = None
        self._restarts = 0
        self._start()

    def _start(self) -> None:
        if self._log is not None:
            self._log.close()
        self._log = open(self.log_path, "w")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "serving.model_server",
                "--port",
                str(self.grpc_port),
                "--rest_api_port",
                str(self.rest_port),
                *self.flags,
            ],
            cwd=ROOT,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def _restart_on_fresh_ports(self) -> bool:
        """True when the server lost one of our picked ports to another process and was started again."""
        if self._restarts >= 2 or "already in use" not in self.log().lower() or not any(self._picked.values()):
            return False
        self._restarts += 1
        if self._picked["grpc"]:
            self.grpc_port = free_port()
        if self._picked["rest"]:
            self.rest_port = free_port()
        self._start()
        return True

    def __enter__(self) -> "ServerProcess":
        """`with ServerProcess(...) as server`: ready inside the block, stopped after it however it ends."""
        try:
            return self.wait_ready()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def rest_url(self) -> str:
        return f"http://127.0.0.1:{self.rest_port}"

    @property
    def grpc_target(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    def log(self) -> str:
        with open(self.log_path) as f:
            return f.read()

    def wait_ready(self, timeout: float = 120) -> "ServerProcess":
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                if self._restart_on_fresh_ports():
                    continue
                raise RuntimeError(f"model server exited with {self.process.returncode}:\n{self.log()[-3000:]}")
            try:
                requests.get(self.rest_url + "/v1/models/_", timeout=1)
                with socket.create_connection(("127.0.0.1", self.grpc_port), timeout=1):
                    return self
            except (requests.ConnectionError, OSError):
                time.sleep(0.2)
        self.stop()
        raise TimeoutError(f"model server not ready in {timeout}s:\n{self.log()[-3000:]}")

    def request_counts(self, metrics_path: str, entrypoint: str, signature: str | None = None) -> dict[str, float]:
        """Inference requests by final status from the server's Prometheus metrics at `metrics_path`
        (it must run with monitoring), for one entrypoint (GRPC or REST) and optionally one signature."""
        from prometheus_client.parser import text_string_to_metric_families

        counts: dict[str, float] = {}
        text = requests.get(self.rest_url + metrics_path, timeout=30).text
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                labels = sample.labels
                if (
                    sample.name == ":tensorflow:serving:request_count_total"
                    and labels.get("entrypoint") == entrypoint
                    and (signature is None or labels.get("signature") == signature)
                ):
                    counts[labels["status"]] = counts.get(labels["status"], 0.0) + sample.value
        return counts

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self._log is not None:
            self._log.close()


def wait_for(predicate, timeout: float, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s")
