"""Serving throughput and latency for the captcha model with PNG inputs, side by side in one run:

(a) this model server over REST (load from `wrk`), (b) over gRPC (load from `h2load`,
nghttp2's C load generator, sending the same HTTP/2 frames a gRPC client sends; the asyncio
client in bench/grpc_load.py when h2load is absent or --python-grpc-client), (c) the same with batching off,
(d) the book's Flask app calling
`model.predict` per request, (e) the in-process limit: the SavedModel called directly on
batches as large as the number of clients; and, with h2load, (f) the gRPC floor: a grpc.aio
server answering a canned PredictResponse with no model (bench/grpc_floor.py).

Every row also has the CPU time it cost per request: the serving process's (`cpu_ms`, all its
threads) and the load generator's (`load_cpu_ms`). From the in-process CPU per image and the
floor's CPU per request follows an upper bound for gRPC on this machine (cores / CPU per request),
printed after the table.

python -m bench.serving_bench [--serving-dir DIR] [--clients 1,8,32,64] [--seconds 8]
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import random
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402 - after TF_CPP_MIN_LOG_LEVEL is set

from bench.common import OUT_DIR, print_table, record
from serving.model_server.process import ROOT, ServerProcess, free_port, wait_for

WRK_SCRIPT = """wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local f = io.open("{body}", "rb")
wrk.body = f:read("*a")
f:close()
"""
BATCHING = """max_batch_size {{ value: {max_batch} }}
batch_timeout_micros {{ value: {timeout_us} }}
num_batch_threads {{ value: {threads} }}
max_enqueued_batches {{ value: 1000 }}
"""


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process, all its threads, from /proc."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


class Meter:
    """CPU time over a `with` block: of process `pid` (all its threads) and of this process's
    children that finished in it (the load generator), per request once the count is known."""

    def __init__(self, pid: int) -> None:
        self.pid = pid

    def __enter__(self) -> "Meter":
        self.server, self.load = cpu_seconds(self.pid), children_cpu_seconds()
        return self

    def __exit__(self, *exc) -> None:
        self.server = cpu_seconds(self.pid) - self.server
        self.load = children_cpu_seconds() - self.load

    def per_request(self, requests: int) -> dict:
        requests = max(1, requests)
        return {"cpu_ms": self.server / requests * 1000, "load_cpu_ms": self.load / requests * 1000}


def captcha_model(serving_dir: str | None) -> str:
    """A pushed captcha model's base path; a quick pipeline run provides one when none is given."""
    if serving_dir and os.path.isdir(os.path.join(serving_dir, "captcha")):
        return os.path.join(serving_dir, "captcha")
    serving_dir = os.path.join(OUT_DIR, "serving_quick")
    if not os.path.isdir(os.path.join(serving_dir, "captcha")):
        print("no pushed captcha model; running the quick pipeline for one (~3 min)", file=sys.stderr)
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pipelines",
                "run",
                "captcha",
                "--quick",
                "--output-dir",
                os.path.join(OUT_DIR, "runs_quick"),
                "--serving-dir",
                serving_dir,
            ],
            cwd=ROOT,
            check=True,
        )
    return os.path.join(serving_dir, "captcha")


def latest_version_dir(base: str) -> str:
    return os.path.join(base, str(max(int(v) for v in os.listdir(base) if v.isdigit())))


def in_process(version_dir: str, image: bytes, clients: list[int], seconds: float) -> list[dict]:
    import tensorflow as tf

    signature = tf.saved_model.load(version_dir).signatures["serving_default"]
    rows = []
    for n in clients:
        batch = tf.constant([image] * n)
        for _ in range(3):
            signature(image_bytes=batch)
        times, deadline = [], time.perf_counter() + seconds
        with Meter(os.getpid()) as meter:
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                signature(image_bytes=batch)
                times.append(time.perf_counter() - started)
        ms = np.array(times) * 1000
        rows.append(
            {
                "what": "(e) in-process, batch = clients",
                "clients": n,
                "rps": n * len(times) / sum(times),
                "p50_ms": float(np.percentile(ms, 50)),
                "p99_ms": float(np.percentile(ms, 99)),
                "errors": 0,
                **meter.per_request(n * len(times)),
            }
        )
    return rows


def _ms(text: str) -> float:
    value, unit = re.match(r"([\d.]+)(us|ms|s)", text).groups()
    return float(value) * {"us": 1e-3, "ms": 1.0, "s": 1000.0}[unit]


def wrk(url: str, body_path: str, clients: int, seconds: float, workdir: str, pid: int) -> dict:
    """REST load from wrk; CPU per request of process `pid` and of wrk over the timed run only."""
    script = os.path.join(workdir, "post.lua")
    with open(script, "w") as f:
        f.write(WRK_SCRIPT.format(body=body_path))
    subprocess.run(["wrk", "-t1", "-c1", "-d1s", "-s", script, url], capture_output=True, check=True)  # warm up
    with Meter(pid) as meter:
        out = subprocess.run(
            [
                "wrk",
                f"-t{min(2, clients)}",
                f"-c{clients}",
                f"-d{max(1, round(seconds))}s",
                "--latency",
                "--timeout",
                "30s",
                "-s",
                script,
                url,
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "p50_ms": _ms(re.search(r"\s50%\s+(\S+)", out).group(1)),
        "p99_ms": _ms(re.search(r"\s99%\s+(\S+)", out).group(1)),
        "errors": (int(errors.group(1)) if errors else 0)
        + (sum(map(int, socket_errors.groups())) if socket_errors else 0),
        **meter.per_request(int(re.search(r"(\d+) requests in", out).group(1))),
    }


def grpc_body(image: bytes, path: str) -> str:
    """One PredictRequest framed as a gRPC message (flag byte, 4-byte length), for h2load to send as is."""
    import struct

    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2

    request = predict_pb2.PredictRequest()
    request.model_spec.name = "captcha"
    request.inputs["image_bytes"].CopyFrom(tf.make_tensor_proto(np.array([image], dtype=object)))
    message = request.SerializeToString()
    with open(path, "wb") as f:
        f.write(b"\x00" + struct.pack(">I", len(message)) + message)
    return path


def h2load_grpc(target: str, body_path: str, clients: int, seconds: float, workdir: str, pid: int) -> dict:
    """gRPC load from h2load (nghttp2, C): the same HTTP/2 request a gRPC client sends, without a Python client
    competing for the two cores. Percentiles come from its per-request log; CPU per request (of process
    `pid` and of h2load) over the timed run only."""
    url = f"http://{target}/tensorflow.serving.PredictionService/Predict"
    log = os.path.join(workdir, "h2load.log")
    flags = ["-d", body_path, "-H", "content-type: application/grpc", "-H", "te: trailers", "-m", "1"]
    subprocess.run(["h2load", "-n", "20", "-c", "1", *flags, url], capture_output=True, check=True)  # warm up
    if os.path.exists(log):
        os.remove(log)  # h2load appends
    with Meter(pid) as meter:
        out = subprocess.run(
            ["h2load", "-c", str(clients), "-D", str(max(1, round(seconds))), "--log-file", log, *flags, url],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    rows = [line.split("\t") for line in open(log) if line.strip()]
    ok = [int(r[2]) / 1000 for r in rows if r[1] == "200"]
    finished = re.search(r"finished in ([\d.]+)(ms|s)", out)
    wall = float(finished.group(1)) / (1000 if finished.group(2) == "ms" else 1)
    # gRPC errors travel in trailers with HTTP 200 and an empty body: real answers carry the outputs (~290 bytes).
    data = re.search(r"\((\d+)\) data", out)
    if not data or int(data.group(1)) / max(1, len(rows)) < 100:
        raise RuntimeError(f"gRPC answers carry no outputs; the requests failed:\n{out}")
    return {
        "rps": len(ok) / wall,
        "p50_ms": float(np.percentile(ok, 50)),
        "p99_ms": float(np.percentile(ok, 99)),
        "errors": len(rows) - len(ok),
        **meter.per_request(len(rows)),
    }


def grpc_load(target: str, image_path: str, clients: int, seconds: float, pid: int) -> dict:
    """gRPC load from the asyncio client; its CPU per request includes its own start-up (TensorFlow's import)."""
    with Meter(pid) as meter:
        out = subprocess.run(
            [
                sys.executable,
                "-m",
                "bench.grpc_load",
                "--target",
                target,
                "--image",
                image_path,
                "--clients",
                str(clients),
                "--seconds",
                str(seconds),
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    result = json.loads(out.strip().splitlines()[-1])
    return {**{k: result[k] for k in ("rps", "p50_ms", "p99_ms", "errors")}, **meter.per_request(result["requests"])}


def serve(base: str, workdir: str, batching: str | None) -> ServerProcess:
    flags = ["--model_name", "captcha", "--model_base_path", base, "--file_system_poll_wait_seconds", "0"]
    if batching:
        path = os.path.join(workdir, "batching.config")
        with open(path, "w") as f:
            f.write(batching)
        flags += ["--enable_batching", "--batching_parameters_file", path]
    return ServerProcess(
        *flags, log_path=os.path.join(workdir, f"server_{'batching' if batching else 'plain'}.log")
    ).wait_ready()


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.serving_bench")
    p.add_argument("--serving-dir", default="serving_models")
    p.add_argument("--clients", default="1,8,32,64")
    p.add_argument("--seconds", type=float, default=8.0)
    p.add_argument("--batch-timeout-us", type=int, default=1000)
    p.add_argument(
        "--batch-threads",
        type=int,
        default=1,
        help="num_batch_threads (1: one batch at a time uses both cores through TF's own threads)",
    )
    p.add_argument(
        "--python-grpc-client",
        action="store_true",
        help="gRPC load from the asyncio client (bench/grpc_load.py) even when h2load is installed",
    )
    args = p.parse_args(argv)
    if not shutil.which("wrk"):
        print("serving bench: `wrk` is needed for the REST load (apt-get install wrk nghttp2-client)", file=sys.stderr)
        return 2
    clients = [int(c) for c in args.clients.split(",")]
    base = captcha_model(args.serving_dir)
    version_dir = latest_version_dir(base)
    workdir = tempfile.mkdtemp(prefix="serving_bench_")
    from components.example_gen.captcha_source import CaptchaRenderer

    image = CaptchaRenderer().render_text("4821", random.Random(0))
    image_path = os.path.join(workdir, "captcha.png")
    with open(image_path, "wb") as f:
        f.write(image)
    encoded = base64.b64encode(image).decode()
    rest_body = os.path.join(workdir, "rest.json")
    with open(rest_body, "w") as f:
        json.dump({"instances": [{"b64": encoded}]}, f)
    flask_body = os.path.join(workdir, "flask.json")
    with open(flask_body, "w") as f:
        json.dump({"image": encoded}, f)

    use_h2load = bool(shutil.which("h2load")) and not args.python_grpc_client
    grpc_body_path = grpc_body(image, os.path.join(workdir, "grpc_body.bin"))
    rows = in_process(version_dir, image, clients, min(args.seconds, 4.0))
    batching = BATCHING.format(max_batch=max(clients), timeout_us=args.batch_timeout_us, threads=args.batch_threads)
    for label, config in (("batching on", batching), ("batching off", None)):
        server = serve(base, workdir, config)
        try:
            pid, rest_url = server.process.pid, f"{server.rest_url}/v1/models/captcha:predict"
            for n in clients:
                rows.append(
                    {
                        "what": f"(a) REST, {label}",
                        "clients": n,
                        **wrk(rest_url, rest_body, n, args.seconds, workdir, pid),
                    }
                )
                if use_h2load:
                    found = h2load_grpc(server.grpc_target, grpc_body_path, n, args.seconds, workdir, pid)
                else:
                    found = grpc_load(server.grpc_target, image_path, n, args.seconds, pid)
                rows.append({"what": f"(b) gRPC, {label}", "clients": n, **found})
                print(f"  {label}: {n} clients done", file=sys.stderr)
        finally:
            server.stop()
    if use_h2load:
        rows += grpc_floor(grpc_body_path, clients, args.seconds, workdir)
    port = free_port()
    flask = subprocess.Popen(
        [sys.executable, "-m", "bench.flask_baseline", version_dir, str(port)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        import requests

        wait_for(lambda: _answers(requests, f"http://127.0.0.1:{port}/predict", encoded), timeout=120, interval=0.5)
        for n in clients:
            rows.append(
                {
                    "what": "(d) Flask + model.predict per request",
                    "clients": n,
                    **wrk(f"http://127.0.0.1:{port}/predict", flask_body, n, args.seconds, workdir, flask.pid),
                }
            )
    finally:
        flask.terminate()
        flask.wait(15)
    limit = {r["clients"]: r["rps"] for r in rows if r["what"].startswith("(e)")}
    for r in rows:
        r["vs in-process"] = r["rps"] / limit[r["clients"]]
    print_table("Serving the captcha model (PNG in), requests/s and latency", rows)
    bounds = grpc_bounds(rows)
    if bounds:
        print_table("Upper bound for a Python gRPC server on this machine (cores / CPU per request)", bounds)
    print(f"\nraw: {record('serving', rows + bounds)}")
    return 0


@contextlib.contextmanager
def floor_server(port: int):
    """bench.grpc_floor on 127.0.0.1:`port`, ready (it prints "ready" once it listens); stopped after."""
    floor = subprocess.Popen(
        [sys.executable, "-m", "bench.grpc_floor", "--port", str(port)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        if floor.stdout.readline().strip() != "ready":
            raise RuntimeError("bench.grpc_floor did not start")
        yield floor
    finally:
        floor.terminate()
        floor.wait(15)


def grpc_floor(body_path: str, clients: list[int], seconds: float, workdir: str) -> list[dict]:
    """(f): grpc.aio with a canned answer under the same h2load load."""
    port = free_port()
    rows = []
    with floor_server(port) as floor:
        for n in clients:
            rows.append(
                {
                    "what": "(f) gRPC floor: grpc.aio, canned answer, no model",
                    "clients": n,
                    **h2load_grpc(f"127.0.0.1:{port}", body_path, n, seconds, workdir, floor.pid),
                }
            )
    return rows


def grpc_bounds(rows: list[dict]) -> list[dict]:
    """At most cores / (model CPU per image in process + gRPC's own CPU per request + the load
    generator's) requests per second: what any Python gRPC server could reach here, as a share of
    the in-process limit. (The model's CPU per image is the in-process figure at a batch as large as
    the number of clients, the most a server can merge.)"""
    cores = os.cpu_count() or 1
    by = {(r["what"][:3], r["clients"]): r for r in rows}
    bounds = []
    for (kind, n), in_process in sorted(by.items()):
        floor = by.get(("(f)", n))
        if kind != "(e)" or floor is None:
            continue
        per_request_ms = in_process["cpu_ms"] + floor["cpu_ms"] + floor["load_cpu_ms"]
        bound = cores / per_request_ms * 1000
        served = next((r for r in rows if r["what"] == "(b) gRPC, batching on" and r["clients"] == n), None)
        bounds.append(
            {
                "clients": n,
                "model_cpu_ms": in_process["cpu_ms"],
                "grpc_floor_cpu_ms": floor["cpu_ms"],
                "load_cpu_ms": floor["load_cpu_ms"],
                "bound_rps": bound,
                "bound_vs_in_process": bound / in_process["rps"],
                "grpc_measured_vs_bound": (served["rps"] / bound) if served else float("nan"),
            }
        )
    return bounds


def _answers(requests, url, encoded) -> bool:
    try:
        return requests.post(url, json={"image": encoded}, timeout=30).status_code == 200
    except requests.ConnectionError:
        return False


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
