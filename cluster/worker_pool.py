"""Beam's Python SDK worker pool (EXTERNAL environment), bound to one address.

`apache_beam.runners.worker.worker_pool_main` listens on every interface; this
runs the same servicer on `--host` (default 127.0.0.1). Each worker the
runner asks for is started through `--container_executable` (the project's
`beam_boot.py` by default), which installs the job's staged packages first.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from concurrent import futures

import grpc
from apache_beam.portability.api import beam_fn_api_pb2, beam_fn_api_pb2_grpc
from apache_beam.runners.worker.worker_pool_main import BeamFnExternalWorkerPoolServicer, kill_process_gracefully


class SharedWorkerPool(BeamFnExternalWorkerPoolServicer):
    """Beam's servicer, safe to share between TaskManagers.

    A TaskManager numbers its SDK environments itself ("1-1", "2-1", ...), so two
    TaskManagers that share one pool ask for the same worker ids. Beam's servicer
    keys its processes by id alone: when one TaskManager released "3-1" it killed
    the other's "3-1", and that TaskManager waited for a harness forever (a job at
    parallelism 2 hung with every task idle). Here a process is keyed by the caller
    and the id: the runner starts and stops a worker over one channel
    (ExternalEnvironmentFactory), so the caller's address tells the two apart.
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._lock = threading.Lock()
        self._by_caller: dict[tuple[str, str], object] = {}

    def StartWorker(self, request, context):
        with self._lock:
            response = super().StartWorker(request, context)
            process = self._worker_processes.pop(request.worker_id, None)
            if process is not None:
                self._by_caller[(context.peer(), request.worker_id)] = process
        return response

    def StopWorker(self, request, context):
        with self._lock:
            process = self._by_caller.pop((context.peer(), request.worker_id), None)
        if process is not None:
            logging.info("Stopping worker %s of %s", request.worker_id, context.peer())
            kill_process_gracefully(process)
        return beam_fn_api_pb2.StopWorkerResponse()

    def processes(self) -> list:
        with self._lock:
            return list(self._by_caller.values())


def serve(host: str, port: int, container_executable: str) -> None:
    pool = SharedWorkerPool(use_process=True, container_executable=container_executable)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=16))
    beam_fn_api_pb2_grpc.add_BeamFnExternalWorkerPoolServicer_to_server(pool, server)
    bound = server.add_insecure_port(f"{host}:{port}")
    if not bound:
        raise SystemExit(f"worker pool: cannot listen on {host}:{port}")
    server.start()
    logging.info("Beam worker pool listening on %s:%s (workers start with %s)", host, bound, container_executable)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    server.stop(grace=2)
    for process in pool.processes():
        if process.poll() is None:
            process.terminate()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=50000)
    parser.add_argument("--container_executable", required=True, help="the boot program each worker runs")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)
    if not os.access(args.container_executable, os.X_OK):
        parser.error(f"not executable: {args.container_executable}")
    serve(args.host, args.port, args.container_executable)
    return 0


if __name__ == "__main__":
    sys.exit(main())
