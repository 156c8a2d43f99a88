"""`make serve`: the model server over serving_models/ and the demo frontend, stopped together on Ctrl-C."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time

from serving import layout
from serving.frontend.config import charset_argument, port_argument
from serving.model_server.process import ROOT, ServerProcess, wait_for
from serving.model_server.replicas import replicas_problem

DEPLOY = os.path.join(ROOT, "serving", "deploy")


def pushed_models(serving_dir: str) -> list[str]:
    config = os.path.join(serving_dir, layout.MODELS_CONFIG)
    if not os.path.exists(config):
        return []
    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2

    with open(config, encoding="utf-8") as f:
        parsed = text_format.Parse(f.read(), model_server_config_pb2.ModelServerConfig())
    return [m.name for m in parsed.model_config_list.config if layout.local_versions(m.base_path)]


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["rollback"]:
        from serving import rollback

        return rollback.main(argv[1:])
    p = argparse.ArgumentParser(prog="make serve", description=__doc__)
    p.add_argument("--serving-dir", default="serving_models")
    p.add_argument("--runs-dir", default="runs")
    p.add_argument("--grpc-port", type=port_argument(0), default=8500, help="0: any free port")
    p.add_argument("--rest-port", type=port_argument(0), default=8501, help="0: any free port")
    p.add_argument("--frontend-port", type=port_argument(1), default=5000)
    p.add_argument("--transport", choices=("rest", "grpc"), default="rest")
    p.add_argument("--captcha-charset", type=charset_argument, default="0123456789")
    p.add_argument("--replicas", type=int, default=1, help="model-server processes sharing the ports (default 1)")
    args = p.parse_args(argv)
    problem = replicas_problem(args.replicas)
    if problem:
        p.error(problem)
    if os.path.exists(args.serving_dir) and not os.path.isdir(args.serving_dir):
        print(
            f"make serve: --serving-dir {args.serving_dir} is a file, not a folder of pushed models.", file=sys.stderr
        )
        return 2
    models = pushed_models(args.serving_dir)
    if not models:
        print(
            f"make serve: no model has been pushed to {args.serving_dir}/ yet: run `make pipeline` first "
            f"(or `make pipeline ARGS=--quick` for a small one).",
            file=sys.stderr,
        )
        return 1
    os.makedirs("serving_logs", exist_ok=True)
    config = os.path.join(args.serving_dir, layout.MODELS_CONFIG)
    print(f"starting the model server for {', '.join(models)} (log: serving_logs/model_server.log) ...", flush=True)
    server = ServerProcess(
        "--model_config_file",
        config,
        "--model_config_file_poll_wait_seconds",
        "5",
        "--enable_batching",
        "--batching_parameters_file",
        os.path.join(DEPLOY, "batching_parameters.txt"),
        "--monitoring_config_file",
        os.path.join(DEPLOY, "monitoring.config"),
        "--replicas",
        str(args.replicas),
        log_path="serving_logs/model_server.log",
        grpc_port=args.grpc_port,
        rest_port=args.rest_port,
    )
    frontend = None
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    # Ctrl-C stops both even when this was started with SIGINT ignored (a background job of a
    # shell without job control), in which case Python would not raise KeyboardInterrupt.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        server.wait_ready()
        frontend = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "serving.frontend",
                "--port",
                str(args.frontend_port),
                "--rest-url",
                server.rest_url,
                "--grpc-target",
                server.grpc_target,
                "--transport",
                args.transport,
                "--models-config",
                config,
                "--runs-dir",
                args.runs_dir,
                "--captcha-charset",
                args.captcha_charset,
            ],
            cwd=os.getcwd(),
            stdout=open("serving_logs/frontend.log", "w"),
            stderr=subprocess.STDOUT,
        )
        import requests

        def frontend_up():
            if frontend.poll() is not None:
                raise RuntimeError("the frontend exited; see serving_logs/frontend.log")
            try:
                return requests.get(f"http://127.0.0.1:{args.frontend_port}/ping", timeout=1).ok
            except requests.ConnectionError:
                return False

        wait_for(frontend_up, timeout=60, interval=0.3)
        print(
            f"model server: REST {server.rest_url}  gRPC {server.grpc_target}  "
            f"metrics {server.rest_url}/monitoring/prometheus/metrics"
        )
        print(f"demo:         http://127.0.0.1:{args.frontend_port}/   (Ctrl-C stops both)", flush=True)
        while not stop:
            if server.process.poll() is not None or frontend.poll() is not None:
                print("make serve: a process exited; see serving_logs/", file=sys.stderr)
                return 1
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    except (RuntimeError, TimeoutError, AssertionError) as e:
        print(f"make serve: {e}", file=sys.stderr)
        return 1
    finally:
        print("stopping ...", flush=True)
        if frontend and frontend.poll() is None:
            frontend.terminate()
            frontend.wait(10)
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
