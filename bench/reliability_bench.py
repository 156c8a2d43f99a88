"""Reliability under load, for the captcha model served as `make serve` serves it (batching on):

  hostile   thousands of generated bad REST and gRPC requests: answers by status, server RSS before and after
  overload  capacity first (closed loop), then 4x capacity open loop for 30 s per protocol with a 1 s
            deadline: how much is shed (503 / UNAVAILABLE) and how fast, answered latency, RSS, and the
            seconds until latency is back to normal once the load stops; gRPC twice: from the Python
            client, and from h2load (C) with outcomes from the server's own counts, when h2load is installed
  replicas  gRPC and REST at 32 clients with 1 and 2 replicas against the in-process limit (the SavedModel
            called directly on batches of 32), and the requests lost when one replica is SIGKILLed under load
  soak      `--soak-seconds` (default 600) at half capacity: RSS growth and p99 drift, first minute vs last
            (and the median per-second p99 of the second half against the first's, and a Theil-Sen
            trend line's last second against its first)
  pause     the server stopped (SIGSTOP) for 3 s, three times, each under 15 s of half-capacity gRPC load:
            RSS before and after each pause, and what was shed. The backlog a pause leaves runs as the
            largest batches on every batch thread at once; what they need must already be taken at load
  slowclients  connections that send slowly or nothing, held against a server started under a soft limit
            of 1,024 open files (common on Linux): 300 request bodies stalled after their first bytes,
            1,500 silent connections to each port, 1,500 gRPC connections idle after the HTTP/2 handshake,
            and 20,000 gRPC calls stalled half-way through their messages (200 connections); whether REST
            and gRPC predicts are still answered 5 s and 20 s after they were opened, and how many of them
            the server has closed or answered 40 s on (100 s for the stalled calls: SLOW_CLIENT_ATTACKS)

python -m bench.reliability_bench [hostile,overload,replicas,soak,pause,slowclients] [--serving-dir DIR] [--soak-seconds 600]
    [--server-flags "--max_queue_ms 0 --max_loop_lag_ms 0"]

The load generators run as separate processes (wrk and h2load when installed, else bench/grpc_load.py;
bench/open_loop.py for open-loop load). Everything targets 127.0.0.1 only and is bounded in time.
"""

from __future__ import annotations

import argparse
import base64
import functools
import gzip
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402 - after TF_CPP_MIN_LOG_LEVEL is set

from bench.common import print_table, record  # noqa: E402 - after TF_CPP_MIN_LOG_LEVEL is set
from bench.serving_bench import captcha_model, grpc_body, grpc_load, h2load_grpc, in_process, latest_version_dir, wrk  # noqa: E402 - after TF_CPP_MIN_LOG_LEVEL is set
from serving.model_server.process import ROOT, ServerProcess, wait_for  # noqa: E402 - after TF_CPP_MIN_LOG_LEVEL is set

DEPLOY = os.path.join(ROOT, "serving", "deploy")
METRICS_PATH = "/monitoring/prometheus/metrics"


def rss_mib(pid: int) -> float:
    """Resident memory of a process and its children (replicas), MiB."""
    total = 0
    for p in [pid, *children(pid)]:
        try:
            with open(f"/proc/{p}/status") as f:
                total += next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
        except (OSError, StopIteration):
            pass
    return total / 1024


def children(pid: int) -> list[int]:
    found = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as f:
                found += [int(c) for c in f.read().split()]
    except OSError:
        pass
    return found


def serve(base: str, workdir: str, replicas: int = 1, extra: tuple[str, ...] = ()) -> ServerProcess:
    config = os.path.join(workdir, "models.config")
    with open(config, "w") as f:
        f.write(
            f'model_config_list {{ config {{ name: "captcha" base_path: "{base}" model_platform: "tensorflow" }} }}\n'
        )
    monitoring = os.path.join(workdir, "monitoring.config")
    with open(monitoring, "w") as f:
        f.write(f'prometheus_config {{ enable: true, path: "{METRICS_PATH}" }}\n')
    server = ServerProcess(
        "--model_config_file",
        config,
        "--monitoring_config_file",
        monitoring,
        "--enable_batching",
        "--batching_parameters_file",
        os.path.join(DEPLOY, "batching_parameters.txt"),
        "--replicas",
        str(replicas),
        "--file_system_poll_wait_seconds",
        "0",
        *extra,
        log_path=os.path.join(workdir, f"server-{replicas}.log"),
    ).wait_ready(timeout=300)
    if replicas > 1:
        wait_for(lambda: len(children(server.process.pid)) == replicas, timeout=120)
    return server


def open_loop(protocol: str, target: str, image_path: str, rate: float, seconds: float, **flags) -> dict:
    command = [
        sys.executable,
        "-m",
        "bench.open_loop",
        "--protocol",
        protocol,
        "--target",
        target,
        "--image",
        image_path,
        "--rate",
        str(rate),
        "--seconds",
        str(seconds),
    ]
    for key, value in flags.items():
        command += [f"--{key.replace('_', '-')}", str(value)]
    out = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=seconds + 300)
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-2000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


class RssSampler:
    def __init__(self, pid: int, every: float = 1.0) -> None:
        self.pid, self.every, self.samples, self._stop = pid, every, [], threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.wait(self.every):
            self.samples.append(rss_mib(self.pid))

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


# --- hostile ------------------------------------------------------------------------------------
def bad_rest_bodies(rng: random.Random, image: bytes, count: int) -> list[bytes]:
    b64 = base64.b64encode(image).decode()
    makers = [
        lambda: bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 200))),
        lambda: b'{"instances": ' + b"[" * rng.randint(50, 100_000) + b"]" * rng.randint(0, 10) + b"}",
        lambda: b'{"inputs": ' + b'{"a":' * rng.randint(50, 5000) + b"1" + b"}" * rng.randint(0, 5000) + b"}",
        lambda: json.dumps({"instances": [{"b64": b64[: rng.randint(0, len(b64))] + "!"}]}).encode(),
        lambda: json.dumps({"instances": [[rng.random()] * rng.randint(1, 50)]}).encode(),
        lambda: json.dumps(
            {"instances": [{"b64": base64.b64encode(bytes(rng.getrandbits(8) for _ in range(64))).decode()}]}
        ).encode(),
        lambda: json.dumps({"signature_name": rng.choice([1, None, "nope", ""]), "instances": []}).encode(),
        lambda: json.dumps({"inputs": {"image_bytes": [{"b64": b64}], "extra": [1]}}).encode(),
        lambda: json.dumps({"instances": [{"b64": b64}], "inputs": [1]}).encode(),
        lambda: b'{"instances": [NaN, Infinity, -1e999, 123456789012345678901234567890]}',
        lambda: ('{"instances": ["' + "\\ud800" * rng.randint(1, 100) + '"]}').encode(),
        lambda: json.dumps({"instances": [{"b64": base64.b64encode(png_bomb()).decode()}]}).encode(),
    ]
    return [rng.choice(makers)() for _ in range(count)]


def bad_rest_requests(rng: random.Random, image: bytes, count: int) -> list[tuple[bytes, dict[str, str]]]:
    """bad_rest_bodies as they are, gzip-compressed, or sent with a Content-Encoding they do not have;
    and now and then a gzip bomb (70 kB that inflate to 70 MiB, past the default 64 MiB limit)."""
    plain = {"Content-Type": "application/json"}
    requests = []
    for body in bad_rest_bodies(rng, image, count):
        kind = rng.random()
        if kind < 0.2:
            requests.append((gzip.compress(body, 1), {**plain, "Content-Encoding": "gzip"}))
        elif kind < 0.3:
            requests.append((body, {**plain, "Content-Encoding": rng.choice(["gzip", "deflate", "br", "x-nope"])}))
        elif kind < 0.32:
            requests.append((gzip_bomb(), {**plain, "Content-Encoding": "gzip"}))
        else:
            requests.append((body, plain))
    return requests


@functools.cache
def gzip_bomb() -> bytes:
    return gzip.compress(b'{"instances": [' + b" " * (70 << 20) + b"]}", 9)


@functools.cache
def png_bomb() -> bytes:
    from tests.serving.pngs import png_claiming

    return png_claiming(16000, 16000)


def bad_grpc_messages(rng: random.Random, image: bytes, count: int) -> list[bytes]:
    from tensorflow.core.framework import types_pb2
    from tensorflow_serving.apis import predict_pb2

    def request(**tensor) -> bytes:
        message = predict_pb2.PredictRequest()
        message.model_spec.name = "captcha"
        proto = message.inputs["image_bytes"]
        proto.dtype = tensor.pop("dtype", types_pb2.DT_STRING)
        for size in tensor.pop("dims", [1]):
            proto.tensor_shape.dim.add().size = size
        proto.string_val.extend(tensor.pop("strings", []))
        proto.tensor_content = tensor.pop("content", b"")
        return message.SerializeToString()

    makers = [
        lambda: bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 300))),
        lambda: request(dims=[1 << rng.randint(20, 62)]),
        lambda: request(dims=[1 << 20, 1 << 20], dtype=types_pb2.DT_FLOAT),
        lambda: request(dims=[-rng.randint(1, 5)], strings=[image]),
        lambda: request(dims=[1], strings=[bytes(rng.getrandbits(8) for _ in range(50))]),
        lambda: request(dims=[1], strings=[png_bomb()]),
        lambda: request(dims=[2], strings=[image]),  # one value broadcast: allowed, answered
        lambda: request(dims=[1], dtype=types_pb2.DT_FLOAT, content=b"\0" * rng.randint(0, 9)),
        lambda: request(dims=[1] * 300, strings=[image]),
        lambda: predict_pb2.PredictRequest().SerializeToString(),
        lambda: request(dims=[1], strings=[image])[: rng.randint(1, 40)],
    ]
    return [rng.choice(makers)() for _ in range(count)]


def hostile(server: ServerProcess, image: bytes, count: int) -> list[dict]:
    import grpc
    import requests

    rng = random.Random(13)
    rows = []
    for protocol in ("rest", "grpc"):
        before = rss_mib(server.process.pid)
        statuses: dict[str, int] = {}
        started = time.perf_counter()
        if protocol == "rest":
            with requests.Session() as session:
                for body, headers in bad_rest_requests(rng, image, count):
                    response = session.post(
                        server.rest_url + "/v1/models/captcha:predict", data=body, headers=headers, timeout=60
                    )
                    statuses[str(response.status_code)] = statuses.get(str(response.status_code), 0) + 1
        else:
            with grpc.insecure_channel(
                server.grpc_target, options=[("grpc.max_send_message_length", 64 << 20)]
            ) as channel:
                call = channel.unary_unary(
                    "/tensorflow.serving.PredictionService/Predict",
                    request_serializer=lambda raw: raw,
                    response_deserializer=lambda raw: raw,
                )
                for message in bad_grpc_messages(rng, image, count):
                    try:
                        call(message, timeout=60)
                        code = "OK"
                    except grpc.RpcError as e:
                        code = e.code().name
                    statuses[code] = statuses.get(code, 0) + 1
        seconds = time.perf_counter() - started
        server_errors = sum(
            n for code, n in statuses.items() if code in ("UNKNOWN", "INTERNAL") or code.startswith("5")
        )
        rows.append(
            {
                "protocol": protocol,
                "requests": count,
                "seconds": seconds,
                "answers": ", ".join(f"{k}: {v}" for k, v in sorted(statuses.items())),
                "5xx/UNKNOWN/INTERNAL": server_errors,
                "RSS before MiB": before,
                "RSS after MiB": rss_mib(server.process.pid),
            }
        )
    return rows


# --- slow and silent clients ---------------------------------------------------------------------
def connection_sending(port: int, data: bytes = b"") -> socket.socket:
    """A connection to 127.0.0.1:`port` that sends `data` (or nothing) and then nothing more."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    if data:
        sock.sendall(data)
    return sock


def stalled_rest_body(port: int, model: str, content_length: int = 100_000) -> socket.socket:
    """A REST predict whose head is complete and whose body stops after its first 15 bytes."""
    head = (
        f"POST /v1/models/{model}:predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {content_length}\r\n\r\n"
    )
    return connection_sending(port, head.encode() + b'{"instances": [')


def stalled_grpc_calls(port: int, calls: int, sent: int = 500) -> socket.socket:
    """A connection to a gRPC port that starts `calls` Predict calls and sends each one's headers and
    the first `sent` bytes of a message said to be 60,000 long, then nothing more (HTTP/2 frames built
    with h2: no gRPC client stalls half-way through a message). With `calls` 0: a connection that
    finishes the HTTP/2 handshake and then stays idle."""
    import h2.config
    import h2.connection
    import h2.events

    connection = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    connection.initiate_connection()
    headers = [
        (":method", "POST"),
        (":scheme", "http"),
        (":path", "/tensorflow.serving.PredictionService/Predict"),
        (":authority", "127.0.0.1"),
        ("content-type", "application/grpc"),
        ("te", "trailers"),
    ]
    for _ in range(calls):
        stream = connection.get_next_available_stream_id()
        connection.send_headers(stream, headers)
        connection.send_data(stream, b"\x00" + (60_000).to_bytes(4, "big") + bytes(sent))
    sock = connection_sending(port, connection.data_to_send())
    # Answer the server as any HTTP/2 client does (acknowledge its settings, answer its ping: gRPC probes
    # the bandwidth with one once data arrives), or gRPC closes the connection after a minute or so, which
    # would end the attack for the attacker. Then send nothing more.
    wanted = {h2.events.RemoteSettingsChanged, h2.events.SettingsAcknowledged}
    if calls:
        wanted.add(h2.events.PingReceived)
    sock.settimeout(5)
    while wanted:
        data = sock.recv(1 << 16)
        if not data:
            raise ConnectionError(f"the server at port {port} closed the connection during the handshake")
        wanted -= {type(event) for event in connection.receive_data(data)}
        sock.sendall(connection.data_to_send())
    sock.settimeout(10)
    return sock


# name, port, connections, how each is opened, and how long they are held before counting those the
# server has closed (a stalled gRPC call has no deadline of its own: its connection's age ends it, 60 s
# +-10% and 30 s of grace by default)
SLOW_CLIENT_ATTACKS = (
    ("bodies stalled after 15 bytes", "rest", 300, lambda port: stalled_rest_body(port, "captcha"), 40.0),
    ("silent connections to REST", "rest", 1500, connection_sending, 40.0),
    ("silent connections to gRPC", "grpc", 1500, connection_sending, 40.0),
    ("gRPC connections idle after the handshake", "grpc", 1500, lambda port: stalled_grpc_calls(port, 0), 40.0),
    (
        "gRPC calls stalled mid-message, 100 per connection",
        "grpc",
        200,
        lambda port: stalled_grpc_calls(port, 100),
        100.0,
    ),
)


def ended_by_server(sock: socket.socket, protocol: str) -> bool:
    """Whether the server has ended this held connection: closed or reset it, or (REST) answered it.
    Every gRPC connection gets the server's HTTP/2 settings, which are no answer."""
    sock.setblocking(False)
    received = False
    try:
        while sock.recv(1 << 16):
            received = True
        return True  # closed, after whatever it sent (a 408, a GOAWAY)
    except BlockingIOError:
        return received and protocol == "rest"  # still open
    except OSError:
        return True  # reset


def _probe(server: ServerProcess, image: bytes, tries: int = 3) -> dict:
    """Predicts over REST and over gRPC through the project's client, one at a time with a 10 s
    timeout: how many were answered, and the slowest pair."""
    from serving.client import make_client

    clients = {
        "REST": make_client("rest", rest_url=server.rest_url, timeout=10),
        "gRPC": make_client("grpc", grpc_target=server.grpc_target, timeout=10),
    }
    answered, slowest = dict.fromkeys(clients, 0), 0.0
    for _ in range(tries):
        started = time.perf_counter()
        for name, client in clients.items():
            try:
                client.predict("captcha", {"image_bytes": [image]})
                answered[name] += 1
            except Exception:  # noqa: BLE001 - whatever the failure, the predict was not answered
                pass
        slowest = max(slowest, time.perf_counter() - started)
    return {**{f"{k} answered": f"{v}/{tries}" for k, v in answered.items()}, "slowest pair s": f"{slowest:.2f}"}


def slow_clients(base: str, workdir: str, image: bytes, extra: tuple[str, ...] = ()) -> list[dict]:
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(1024, hard), hard))  # the server inherits it
    try:
        server = serve(base, workdir, extra=extra)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # room for this process's sockets
    rows = []
    try:
        for name, protocol, count, open_one, hold_s in SLOW_CLIENT_ATTACKS:
            port = server.rest_port if protocol == "rest" else server.grpc_port
            held = [open_one(port) for _ in range(count)]
            opened = time.monotonic()
            row: dict = {"held": name, "connections": count}
            # Twice while they are held: the admission count adapts to the answer rate within seconds.
            for at in (5, 20):
                time.sleep(max(0.0, at - (time.monotonic() - opened)))
                probe = _probe(server, image)
                for key, value in probe.items():
                    row[key] = f"{row[key]}, {value}" if key in row else value
            row["server fds"] = len(os.listdir(f"/proc/{server.process.pid}/fd"))
            row["server RSS MiB"] = round(rss_mib(server.process.pid))
            time.sleep(max(0.0, hold_s - (time.monotonic() - opened)))
            ended = sum(ended_by_server(sock, protocol) for sock in held)
            row["closed or answered"] = f"{ended} by {hold_s:.0f} s"
            for sock in held:
                sock.close()
            rows.append(row)
            print_table("slow clients", rows[-1:])
            time.sleep(1)
        rows.append(
            {
                "held": "none (after)",
                "connections": 0,
                **_probe(server, image),
                "server RSS MiB": round(rss_mib(server.process.pid)),
            }
        )
    finally:
        server.stop()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    return rows


# --- overload -----------------------------------------------------------------------------------
def capacity(server: ServerProcess, image_path: str) -> float:
    """Answers/s with 16 gRPC clients back to back: what the server sustains."""
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.grpc_load",
            "--target",
            server.grpc_target,
            "--image",
            image_path,
            "--clients",
            "16",
            "--seconds",
            "8",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])["rps"]


def recovery_seconds(after: dict, normal_p50: float) -> float | None:
    """Seconds after the overload until the per-second p50 is within 1.5x of the quiet p50 (and stays)."""
    seconds = [s for s in after["seconds"] if s.get("p50_ms") is not None]
    for i, s in enumerate(seconds):
        if all(t["p50_ms"] <= 1.5 * normal_p50 + 5 for t in seconds[i:]):
            return float(s["second"])
    return None


def grpc_counts(server: ServerProcess) -> dict[str, float]:
    """The server's gRPC Predict count by final status."""
    return server.request_counts(METRICS_PATH, "GRPC")


def h2load_open_loop(server: ServerProcess, image: bytes, rate: float, seconds: float, deadline_ms: int) -> dict:
    """gRPC at a fixed rate from h2load (C: the Python gRPC client needs more than the core the server
    leaves it at this rate and falls a second behind), each request with a `grpc-timeout` deadline.
    h2load sees only HTTP 200s (gRPC's status travels in trailers), so the answers are the server's own
    count of OK; of the rest, those that took 90% of the deadline or more waited it out, the others were
    refused at once (shed). Latencies are h2load's, of every response (answers and refusals)."""
    clients = 16
    with tempfile.TemporaryDirectory() as scratch:
        body, log = os.path.join(scratch, "body.grpc"), os.path.join(scratch, "h2load.log")
        grpc_body(image, body)
        before = grpc_counts(server)
        started = time.perf_counter()
        out = subprocess.run(
            [
                "h2load",
                "-c",
                str(clients),
                "-m",
                "1024",
                "--rps",
                str(rate / clients),
                "-D",
                str(round(seconds)),
                "--log-file",
                log,
                "-d",
                body,
                "-H",
                "content-type: application/grpc",
                "-H",
                "te: trailers",
                "-H",
                f"grpc-timeout: {deadline_ms}m",
                f"http://{server.grpc_target}/tensorflow.serving.PredictionService/Predict",
            ],
            capture_output=True,
            text=True,
            timeout=seconds + 120,
        )
        wall = time.perf_counter() - started
        wait_for(lambda: grpc_counts(server) != before, timeout=10)
        time.sleep(deadline_ms / 1000 + 1)  # requests still inside the server end within their deadline
        after = grpc_counts(server)
        ms = np.array([int(line.split("\t")[2]) / 1000 for line in open(log) if line.strip()])
    if out.returncode != 0 or not len(ms):
        raise RuntimeError(f"h2load failed:\n{out.stdout[-2000:]}{out.stderr[-2000:]}")
    sent = len(ms)
    ok = after.get("OK", 0) - before.get("OK", 0)
    # What was not answered either waited until its deadline (DEADLINE_EXCEEDED) or was refused at once:
    # UNAVAILABLE from the server, or CANCELLED by gRPC's core at the door (--grpc_max_pending), which no
    # handler counts. h2load cannot tell them apart; the time each took can.
    deadline = int((ms >= 0.9 * deadline_ms).sum())
    shed = sent - ok - deadline
    counted = {k: v - before.get(k, 0) for k, v in after.items() if v - before.get(k, 0)}
    return {
        "sent": sent,
        "sent_rps": sent / wall,
        "outcomes": {"ok": ok, "shed": shed, "deadline": deadline},
        "server_counts": {**counted, "never reached a handler": sent - sum(counted.values())},
        "p50_ms": float(np.percentile(ms, 50)),
        "p99_ms": float(np.percentile(ms, 99)),
        "client_lag_ms": None,
    }


def overload(server: ServerProcess, image_path: str, rate: float, seconds: float) -> list[dict]:
    rows = []
    target = {"grpc": server.grpc_target, "rest": server.rest_url.removeprefix("http://")}
    with open(image_path, "rb") as f:
        image = f.read()
    protocols = ["grpc", "rest"]
    if shutil.which("h2load"):
        protocols.insert(1, "grpc (h2load)")
    for protocol in protocols:
        client = protocol.split()[0]
        quiet = open_loop(client, target[client], image_path, rate * 0.25, 5)
        before = rss_mib(server.process.pid)
        with RssSampler(server.process.pid) as rss:
            if protocol == "grpc (h2load)":
                loaded = h2load_open_loop(server, image, rate * 4, seconds, deadline_ms=1000)
            else:
                loaded = open_loop(client, target[client], image_path, rate * 4, seconds, deadline_ms=1000)
        after = open_loop(client, target[client], image_path, rate * 0.25, 10)
        outcomes = loaded["outcomes"]
        sent = loaded["sent"]
        lag = loaded["client_lag_ms"]
        rows.append(
            {
                "protocol": protocol,
                "capacity rps": rate,
                "offered rps": rate * 4,
                "sent rps": loaded["sent_rps"],
                "ok %": 100 * outcomes.get("ok", 0) / sent,
                "shed %": 100 * outcomes.get("shed", 0) / sent,
                "deadline %": 100 * outcomes.get("deadline", 0) / sent,
                "other": sum(v for k, v in outcomes.items() if k.startswith("other")),
                "ok p50 ms": loaded["p50_ms"],
                "ok p99 ms": loaded["p99_ms"],
                "client lag p50 / p99 ms": "{p50:.0f} / {p99:.0f}".format(**lag) if lag else "-",
                "quiet p50 ms": quiet["p50_ms"],
                "RSS before MiB": before,
                "RSS max MiB": max(rss.samples or [before]),
                "RSS after MiB": rss_mib(server.process.pid),
                "back to normal s": recovery_seconds(after, quiet["p50_ms"]),
                "server counts": ", ".join(f"{k} {v:.0f}" for k, v in loaded.get("server_counts", {}).items()) or "-",
            }
        )
        print_table("overload", rows[-1:])
    return rows


# --- replicas -----------------------------------------------------------------------------------
def replicas(
    base: str,
    image: bytes,
    image_path: str,
    workdir: str,
    clients: int = 32,
    seconds: float = 10,
    extra: tuple[str, ...] = (),
) -> list[dict]:
    rest_body = os.path.join(workdir, "rest.json")
    with open(rest_body, "w") as f:
        json.dump({"instances": [{"b64": base64.b64encode(image).decode()}]}, f)
    grpc_body_path = grpc_body(image, os.path.join(workdir, "grpc.bin"))
    limit = in_process(latest_version_dir(base), image, [clients], seconds)[0]["rps"]
    rows = [
        {
            "what": "in-process limit (batch = clients)",
            "replicas": "-",
            "clients": clients,
            "rps": limit,
            "vs limit": 1.0,
        }
    ]
    for count in (1, 2):
        server = serve(base, workdir, count, extra)
        try:
            for protocol in ("grpc", "rest"):
                if protocol == "rest" and shutil.which("wrk"):
                    found = wrk(
                        server.rest_url + "/v1/models/captcha:predict",
                        rest_body,
                        clients,
                        seconds,
                        workdir,
                        server.process.pid,
                    )
                elif protocol == "grpc" and shutil.which("h2load"):
                    found = h2load_grpc(
                        server.grpc_target, grpc_body_path, clients, seconds, workdir, server.process.pid
                    )
                elif protocol == "grpc":
                    found = grpc_load(server.grpc_target, image_path, clients, seconds, server.process.pid)
                else:
                    continue
                rows.append(
                    {
                        "what": protocol,
                        "replicas": count,
                        "clients": clients,
                        "rps": found["rps"],
                        "vs limit": found["rps"] / limit,
                        "p50_ms": found.get("p50_ms"),
                        "p99_ms": found.get("p99_ms"),
                    }
                )
                print_table("replicas", rows[-1:])
            if count == 2:
                rows += kill_one_replica(server, image_path)
        finally:
            server.stop()
    return rows


def kill_one_replica(server: ServerProcess, image_path: str) -> list[dict]:
    """Open-loop REST and gRPC load on two replicas; one is SIGKILLed 4 s in. Without retries the lost
    requests are those in flight on it (and, for gRPC, sent on its connections before clients notice);
    with up to 3 retries none should be lost."""
    rows = []
    target = {"grpc": server.grpc_target, "rest": server.rest_url.removeprefix("http://")}
    for protocol in ("grpc", "rest"):
        for retries in (0, 3):
            victim = sorted(children(server.process.pid))[0]
            timer = threading.Timer(4.0, os.kill, (victim, signal.SIGKILL))
            timer.start()
            found = open_loop(protocol, target[protocol], image_path, 60, 12, deadline_ms=5000, retries=retries)
            timer.join()
            failed = sum(v for k, v in found["outcomes"].items() if k != "ok" and not k.startswith("retried"))
            rows.append(
                {
                    "what": f"{protocol}: one of 2 replicas SIGKILLed at 4 s",
                    "replicas": 2,
                    "clients": "60 rps",
                    "retries": retries,
                    "sent": found["sent"],
                    "failed": failed,
                    "retried": sum(v for k, v in found["outcomes"].items() if k.startswith("retried")),
                }
            )
            print_table("replica killed", rows[-1:])
            wait_for(lambda: len(children(server.process.pid)) == 2, timeout=120)
            time.sleep(8)  # the restarted replica loads the model
    return rows


# --- soak ---------------------------------------------------------------------------------------
def trend_drift_percent(values: list[float | None], skip: int = 5) -> float | None:
    """The drift of a per-second series as a trend: a Theil-Sen line (the median of the slopes
    between every two seconds, then the median intercept) through the seconds after `skip`, and
    how far its value at the last second is from its value at the first, in percent of the first.
    A slow second or minute anywhere moves the first-vs-last-minute comparison; it barely moves
    this line, which tilts only when the series as a whole climbs or falls."""
    points = [(t, v) for t, v in enumerate(values) if t >= skip and v is not None]
    if len(points) < 10:
        return None
    t, y = (np.array(column, float) for column in zip(*points))
    i, j = np.triu_indices(len(t), 1)
    slope = float(np.median((y[j] - y[i]) / (t[j] - t[i])))
    intercept = float(np.median(y - slope * t))
    start, end = intercept + slope * t[0], intercept + slope * t[-1]
    return 100 * (end - start) / start if start > 0 else None


def soak(server: ServerProcess, image_path: str, rate: float, seconds: float) -> list[dict]:
    with RssSampler(server.process.pid, every=2) as rss:
        start_rss = rss_mib(server.process.pid)
        found = open_loop("grpc", server.grpc_target, image_path, rate * 0.5, seconds, deadline_ms=5000)
    per_second = found["seconds"]
    # The whole series, for finding when a step in RSS or latency came and what came with it.
    series = record("soak_series", [{"rss_every_seconds": 2, "rss_mib": rss.samples, "per_second": per_second}])
    print(f"soak: per-second latencies and RSS every 2 s in {series}", flush=True)

    def p99(window, average=np.mean):
        # the per-second p99s (the open-loop client reports per second) averaged over the window:
        # by their mean per minute, by their median per half (one slow second moves a minute's mean,
        # not a half's median)
        values = [s["p99_ms"] for s in window if s.get("p99_ms") is not None]
        return float(average(values)) if values else None

    first, last = p99(per_second[5:65]), p99(per_second[-60:])
    half = len(per_second) // 2
    early, late = p99(per_second[5:half], np.median), p99(per_second[half:], np.median)
    end_rss = rss.samples[-1] if rss.samples else rss_mib(server.process.pid)
    return [
        {
            "seconds": seconds,
            "rate rps": rate * 0.5,
            "sent": found["sent"],
            "failed": sum(v for k, v in found["outcomes"].items() if k != "ok"),
            "RSS start MiB": start_rss,
            "RSS end MiB": end_rss,
            "RSS growth %": 100 * (end_rss - start_rss) / start_rss,
            "p99 first min ms": first,
            "p99 last min ms": last,
            "p99 drift %": 100 * (last - first) / first if first and last else None,
            "p99 drift, halves' medians %": 100 * (late - early) / early if early and late else None,
            "p99 drift, trend %": trend_drift_percent([s.get("p99_ms") for s in per_second]),
            "RSS by minute MiB": [round(v) for v in rss.samples[29::30]],
            "p99 by minute ms": [
                round(p99(per_second[m * 60 : (m + 1) * 60]) or 0, 1) for m in range(len(per_second) // 60)
            ],
        }
    ]


# --- pause ----------------------------------------------------------------------------------------
def pauses(server: ServerProcess, image_path: str, rate: float, count: int = 3, seconds: float = 3.0) -> list[dict]:
    """The server stopped for `seconds`, `count` times, each 5 s into 15 s of open-loop gRPC load at
    half capacity (deadline 15 s, so the backlog is answered, not dropped): RSS before and after each."""
    pid, rows = server.process.pid, []
    open_loop("grpc", server.grpc_target, image_path, rate * 0.5, 10, deadline_ms=5000)  # steady state first
    for number in range(1, count + 1):
        before = rss_mib(pid)

        def pause() -> None:
            time.sleep(5)
            os.kill(pid, signal.SIGSTOP)
            try:
                time.sleep(seconds)
            finally:
                os.kill(pid, signal.SIGCONT)

        pauser = threading.Thread(target=pause)
        pauser.start()
        try:
            found = open_loop("grpc", server.grpc_target, image_path, rate * 0.5, 15, deadline_ms=15_000)
        finally:
            pauser.join()
        time.sleep(2)
        after = rss_mib(pid)
        rows.append(
            {
                "pause": number,
                "seconds stopped": seconds,
                "sent": found["sent"],
                **dict(sorted(found["outcomes"].items())),
                "RSS before MiB": before,
                "RSS after MiB": after,
                "RSS growth %": 100 * (after - before) / before,
            }
        )
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("steps", nargs="?", default="hostile,overload,pause,replicas,slowclients")
    parser.add_argument("--serving-dir")
    parser.add_argument("--hostile-requests", type=int, default=2000)
    parser.add_argument("--overload-seconds", type=float, default=30)
    parser.add_argument("--soak-seconds", type=float, default=600)
    parser.add_argument(
        "--server-flags",
        default="",
        help='more model-server flags, e.g. "--max_queue_ms 0 --max_loop_lag_ms 0" (the fixed admission count '
        'of before) or "--event_loop asyncio"',
    )
    args = parser.parse_args(argv)
    steps = args.steps.split(",")
    server_flags = tuple(args.server_flags.split())
    base = captcha_model(args.serving_dir)
    from tests.pipelines.test_captcha_pipeline import png

    image = png("4821")
    results = {}
    with tempfile.TemporaryDirectory() as workdir:
        image_path = os.path.join(workdir, "captcha.png")
        with open(image_path, "wb") as f:
            f.write(image)
        if {"hostile", "overload", "soak", "pause"} & set(steps):
            server = serve(base, workdir, extra=server_flags)
            try:
                if "hostile" in steps:
                    results["hostile"] = hostile(server, image, args.hostile_requests)
                    print_table("hostile requests", results["hostile"])
                rate = capacity(server, image_path) if {"overload", "soak", "pause"} & set(steps) else 0.0
                if "overload" in steps:
                    results["overload"] = overload(server, image_path, rate, args.overload_seconds)
                    print_table("overload: 4x capacity", results["overload"])
                if "soak" in steps:
                    results["soak"] = soak(server, image_path, rate, args.soak_seconds)
                    print_table("soak: half capacity", results["soak"])
                if "pause" in steps:
                    results["pause"] = pauses(server, image_path, rate)
                    print_table("pause: the server stopped 3 s under half-capacity load", results["pause"])
            finally:
                server.stop()
        if "slowclients" in steps:
            results["slowclients"] = slow_clients(base, workdir, image, extra=server_flags)
            print_table("slow and silent clients", results["slowclients"])
        if "replicas" in steps:
            results["replicas"] = replicas(base, image, image_path, workdir, extra=server_flags)
            print_table("replicas at 32 clients vs the in-process limit", results["replicas"])
    record("reliability", [{"step": k, "rows": v} for k, v in results.items()])
    return 0


if __name__ == "__main__":
    sys.exit(main())
