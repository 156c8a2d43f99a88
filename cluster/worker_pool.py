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
from apache_beam.portability.api import beam_fn_api_pb2_grpc
from apache_beam.runners.worker.worker_pool_main import BeamFnExternalWorkerPoolServicer


def serve(host: str, port: int, container_executable: str) -> None:
    pool = BeamFnExternalWorkerPoolServicer(use_process=True, container_executable=container_executable)
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
    for process in list(pool._worker_processes.values()):  # noqa: SLF001 - the servicer keeps no public list
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
