"""python -m serving.model_server: flags named as tensorflow_model_server names them."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import warnings
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from serving.model_server.config import BatchingParameters

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# Google client libraries' Python-version notice (pulled in with the serving APIs) says nothing about
# the server; it was the first line of every server's log. As pipelines/cli.py filters it.
warnings.filterwarnings("ignore", category=FutureWarning, module=r"google\..*")


def _bool(text: str) -> bool:
    if text.lower() in ("1", "true", "yes"):
        return True
    if text.lower() in ("0", "false", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m serving.model_server",
        description="TF Serving's REST and gRPC API over SavedModels in TF Serving's layout.",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8500, help="gRPC port (0: any free port)")
    p.add_argument("--rest_api_port", type=int, default=8501, help="REST port (0: any free port; -1: no REST)")
    p.add_argument("--model_name", default="default")
    p.add_argument("--model_base_path", help="directory of integer version directories")
    p.add_argument("--model_config_file", help="ModelServerConfig in text format (several models)")
    p.add_argument(
        "--file_system_poll_wait_seconds",
        type=float,
        default=1.0,
        help="how often to look for new versions (0: load once)",
    )
    p.add_argument(
        "--model_config_file_poll_wait_seconds",
        type=float,
        default=0.0,
        help="how often to re-read --model_config_file (0: never)",
    )
    p.add_argument("--enable_batching", type=_bool, nargs="?", const=True, default=False)
    p.add_argument("--batching_parameters_file", help="BatchingParameters in text format")
    p.add_argument("--monitoring_config_file", help="MonitoringConfig in text format (Prometheus path)")
    p.add_argument("--rest_api_timeout_in_ms", type=int, default=30_000)
    p.add_argument("--rest_api_num_threads", type=int, default=64)
    p.add_argument(
        "--rest_api_idle_timeout_seconds",
        type=_positive_seconds,
        default=30.0,
        help="close a REST connection that sends no complete request head for this long, from its start or "
        "its last answer (default %(default)s)",
    )
    p.add_argument(
        "--rest_max_body_bytes_in_flight",
        type=int,
        default=1 << 30,
        help="REST request bodies the server holds at once, by their Content-Length; past it 503 (default %(default)s)",
    )
    p.add_argument("--grpc_max_threads", type=int, default=64)
    p.add_argument(
        "--max_request_bytes", type=int, default=64 << 20, help="largest request body (REST) or message (gRPC) accepted"
    )
    p.add_argument(
        "--grpc_channel_arguments",
        default="",
        help="comma-separated key=value gRPC channel arguments, as tensorflow_model_server takes them",
    )
    p.add_argument(
        "--max_in_flight",
        type=int,
        default=0,
        help="inference requests inside the server at once before it answers 503 / UNAVAILABLE "
        "(0: what batching can queue and run plus one batch, or 4x the threads)",
    )
    p.add_argument(
        "--max_loop_lag_ms",
        type=float,
        default=100.0,
        help="refuse inference requests with 503 / UNAVAILABLE while the server's event loop runs this many ms "
        "behind (requests waiting to be read); 0: never (default 100)",
    )
    p.add_argument(
        "--max_queue_ms",
        type=float,
        default=250.0,
        help="admit at most this many ms of work (at the answer rate measured while busy) before answering "
        "503 / UNAVAILABLE; ignored with --max_in_flight; 0: the fixed count (default 250)",
    )
    p.add_argument(
        "--grpc_max_pending",
        type=int,
        default=128,
        help="gRPC calls waiting for the server's event loop before gRPC's core refuses new ones (some from "
        "this many, all from 4x), in C before Python sees them; 0: gRPC's default (1,000 to 3,000) (default %(default)s)",
    )
    p.add_argument(
        "--event_loop",
        default="auto",
        help="the event loop both APIs run on: uvloop, asyncio, or auto (uvloop where installed; the default)",
    )
    p.add_argument("--ssl_config_file", help="SSLConfig in text format: TLS (and client certificates) on both ports")
    p.add_argument(
        "--replicas",
        type=int,
        default=1,
        help="server processes sharing the ports (SO_REUSEPORT), restarted when they die (default 1)",
    )
    p.add_argument("--reuse_port", action="store_true", help=argparse.SUPPRESS)  # set for each replica
    p.add_argument("--tensorflow_intra_op_parallelism", type=int, default=0)
    p.add_argument("--tensorflow_inter_op_parallelism", type=int, default=0)
    return p.parse_args(argv)


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, got {text!r}")
    return value


def channel_arguments(text: str) -> tuple:
    found = []
    for item in filter(None, (s.strip() for s in text.split(","))):
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"--grpc_channel_arguments: {item!r} is not key=value")
        found.append((key, int(value) if value.lstrip("-").isdigit() else value))
    return tuple(found)


def op_threads_per_batch(batching: BatchingParameters) -> int:
    """TensorFlow's threads per op when batching and --tensorflow_intra_op_parallelism is not given:
    num_batch_threads batches run at once, so each gets its share of the cores instead of TensorFlow's
    default of all of them (which oversubscribes the cores num_batch_threads times over, beside gRPC's
    and the event loop's threads). On 2 cores with 2 batch threads that is 1: 12% more gRPC answers/s
    at 32 clients than the default, in four alternating pairs (BENCHMARKS.md, issue #13)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, cores // batching.num_batch_threads)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname).1s %(message)s", stream=sys.stderr)
    from serving.model_server.replicas import replicas_problem, supervise

    problem = replicas_problem(args.replicas)
    if problem:
        print(f"model_server: {problem}", file=sys.stderr)
        return 2
    if args.replicas > 1:
        return supervise(argv, args)
    from serving.model_server.config import (
        ConfigError,
        ServerOptions,
        read_batching_parameters,
        read_monitoring_path,
        read_ssl_config,
    )

    try:  # the flags and files are checked before TensorFlow is imported: a mistake is refused at once
        options = ServerOptions(
            host=args.host,
            port=args.port,
            rest_api_port=args.rest_api_port,
            model_name=args.model_name,
            model_base_path=args.model_base_path,
            model_config_file=args.model_config_file,
            file_system_poll_wait_seconds=args.file_system_poll_wait_seconds,
            model_config_file_poll_wait_seconds=args.model_config_file_poll_wait_seconds,
            batching=read_batching_parameters(args.batching_parameters_file) if args.enable_batching else None,
            monitoring_path=read_monitoring_path(args.monitoring_config_file),
            rest_api_timeout_in_ms=args.rest_api_timeout_in_ms,
            rest_api_num_threads=args.rest_api_num_threads,
            rest_api_idle_timeout_s=args.rest_api_idle_timeout_seconds,
            rest_max_body_bytes_in_flight=args.rest_max_body_bytes_in_flight,
            grpc_max_threads=args.grpc_max_threads,
            max_request_bytes=args.max_request_bytes,
            grpc_channel_arguments=channel_arguments(args.grpc_channel_arguments),
            reuse_port=args.reuse_port,
            ssl=read_ssl_config(args.ssl_config_file),
            max_in_flight=args.max_in_flight,
            max_loop_lag_ms=args.max_loop_lag_ms,
            max_queue_ms=args.max_queue_ms,
            grpc_max_pending=args.grpc_max_pending,
            event_loop=args.event_loop,
        )
        import tensorflow as tf

        if args.tensorflow_intra_op_parallelism:
            tf.config.threading.set_intra_op_parallelism_threads(args.tensorflow_intra_op_parallelism)
        if args.tensorflow_inter_op_parallelism:
            tf.config.threading.set_inter_op_parallelism_threads(args.tensorflow_inter_op_parallelism)
        if options.batching is not None and not args.tensorflow_intra_op_parallelism:
            threads = op_threads_per_batch(options.batching)
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            logging.getLogger("serving.model_server").info(
                "TensorFlow: %d thread(s) per op, %d batch(es) at once", threads, options.batching.num_batch_threads
            )
        from serving.model_server.server import ModelServer

        server = ModelServer(options)
    except (ConfigError, ValueError) as e:
        print(f"model_server: {e}", file=sys.stderr)
        return 2
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    try:
        server.start()
    except OSError as e:
        print(f"model_server: cannot start: {e}", file=sys.stderr)
        server.stop()
        return 1
    stop.wait()
    logging.getLogger("serving.model_server").info("shutting down")
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
