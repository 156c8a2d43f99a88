"""Clients that send slowly or not at all stop nothing: a real server over 127.0.0.1, raw sockets.

Before these limits, 300 connections that sent a request head and then a body one byte at a time
(or not at all) filled the server's admission count and every predict on both protocols got 503 /
UNAVAILABLE for as long as they stayed; and a thousand connections that sent nothing took every
file descriptor of a server started under the common soft limit of 1,024, so it accepted nothing
on either port (BENCHMARKS.md, issue #13)."""

from __future__ import annotations

import json
import resource
import socket
import time

import numpy as np
import pytest
import requests

from bench.reliability_bench import connection_sending, stalled_grpc_calls, stalled_rest_body
from serving.grpc_client import GrpcClient
from serving.model_server.config import SHUTDOWN_GRACE_S
from tests.serving.toy_model import toy_server, write_toy_model

PREDICT = "/v1/models/toy:predict"
BODY = json.dumps({"instances": [1.0, 2.0]}).encode()


def _answer(sock: socket.socket, timeout: float) -> bytes:
    """What the server sends back until it closes the connection or `timeout` passes."""
    sock.settimeout(timeout)
    received = b""
    try:
        while chunk := sock.recv(65536):
            received += chunk
            if b"\r\n\r\n" in received and received.rstrip().endswith(b"}"):
                break
    except TimeoutError:
        pass
    return received


def _served(server) -> tuple[int, list[float]]:
    """A predict over REST (its HTTP status) and over gRPC (its answer)."""
    rest = requests.post(server.rest_url + PREDICT, data=BODY, timeout=30)
    grpc_answer = GrpcClient(server.grpc_target).predict("toy", {"x": np.array([1.0], np.float32)})
    return rest.status_code, grpc_answer.outputs["y"].tolist()


@pytest.fixture
def toy(tmp_path):
    write_toy_model(str(tmp_path / "toy"), 1)
    return str(tmp_path / "toy")


def test_slow_request_bodies_hold_no_admission_and_get_408(toy, tmp_path):
    # Room for two requests inside the server; six clients stall in their bodies.
    server = toy_server(
        toy, "--max_in_flight", "2", "--rest_api_timeout_in_ms", "2000", log_path=str(tmp_path / "s.log")
    ).wait_ready()
    try:
        stalled = [stalled_rest_body(server.rest_port, "toy", 1000) for _ in range(6)]
        time.sleep(0.5)  # the server has read their heads and is waiting for the bodies
        assert _served(server) == (200, [1.5])
        started = time.monotonic()
        for sock in stalled:
            answer = _answer(sock, timeout=20)
            assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
            assert b"Request body not received within 2000 ms" in answer, answer
            sock.close()
        assert time.monotonic() - started < 15
        assert _served(server) == (200, [1.5])
    finally:
        server.stop()


def test_grpc_calls_stalled_mid_message_hold_no_admission(toy, tmp_path):
    """A gRPC call is admitted once its whole message is in: 500 calls stalled half-way through theirs
    (10 connections) leave a server with room for two requests inside answering on both protocols."""
    server = toy_server(toy, "--max_in_flight", "2", log_path=str(tmp_path / "s.log")).wait_ready()
    stalled = []
    try:
        stalled = [stalled_grpc_calls(server.grpc_port, 50) for _ in range(10)]
        time.sleep(1)
        assert server.process.poll() is None
        for _ in range(3):
            assert _served(server) == (200, [1.5])
    finally:
        for sock in stalled:
            sock.close()
        server.stop()


def _closed_at(sock: socket.socket, opened: float, timeout: float) -> float | None:
    """Seconds from `opened` until the server closed `sock` (what it sends is dropped), or None if it is
    still open `timeout` seconds after `opened`."""
    sock.settimeout(0.1)
    while time.monotonic() - opened < timeout:
        try:
            if not sock.recv(65536):
                return time.monotonic() - opened
        except TimeoutError:
            pass
        except OSError:
            return time.monotonic() - opened  # reset
    return None


def test_grpc_connections_idle_or_too_old_are_closed_and_a_channel_carries_on(toy, tmp_path):
    """A gRPC connection with no call in flight is closed after `grpc.max_connection_idle_ms`, and
    every connection at `grpc.max_connection_age_ms` plus its grace, which is what ends calls stalled
    half-way through their message. Shortened here through --grpc_channel_arguments (the defaults, 30 s
    idle, 60 s of age and 30 s of grace, are checked in the server's log below). A client's channel
    reconnects by itself: none of its calls fails across the closes."""
    limits = "grpc.max_connection_idle_ms=1000,grpc.max_connection_age_ms=4000,grpc.max_connection_age_grace_ms=1000"
    server = toy_server(toy, "--grpc_channel_arguments", limits, log_path=str(tmp_path / "s.log")).wait_ready()
    held: list[socket.socket] = []
    try:
        opened = time.monotonic()
        held = [stalled_grpc_calls(server.grpc_port, 0), stalled_grpc_calls(server.grpc_port, 20)]
        idle, stalled = (_closed_at(sock, opened, timeout=15) for sock in held)
        assert idle is not None and idle < 3.5, idle  # before the age (4 s -10%) could have done it
        assert stalled is not None and 3.5 < stalled < 12, stalled  # the age (+-10%) and grace, not idleness
        client = GrpcClient(server.grpc_target)
        for pause in [0.4] * 12 + [1.5]:  # through an age or more, then an idle close
            answer = client.predict("toy", {"x": np.array([1.0], np.float32)})
            assert answer.outputs["y"].tolist() == [1.5]
            time.sleep(pause)
        assert client.predict("toy", {"x": np.array([3.0], np.float32)}).outputs["y"].tolist() == [2.5]
    finally:
        for sock in held:
            sock.close()
        server.stop()


def test_silent_and_half_sent_heads_are_closed_after_the_idle_timeout(toy, tmp_path):
    server = toy_server(toy, "--rest_api_idle_timeout_seconds", "1", log_path=str(tmp_path / "s.log")).wait_ready()
    try:
        silent = connection_sending(server.rest_port)
        half = connection_sending(server.rest_port, f"POST {PREDICT} HTTP/1.1\r\nHost: x\r\n".encode())
        started = time.monotonic()
        for sock in (silent, half):
            assert _answer(sock, timeout=20) == b""  # closed by the server, nothing sent
            sock.close()
        assert time.monotonic() - started < 10
        # A client that keeps its connection between requests within the timeout is served on it.
        with requests.Session() as session:
            for _ in range(3):
                assert session.post(server.rest_url + PREDICT, data=BODY, timeout=30).status_code == 200
                time.sleep(0.3)
    finally:
        server.stop()


def test_request_bodies_past_the_budget_are_refused_at_once_and_the_budget_comes_back(toy, tmp_path):
    server = toy_server(
        toy,
        "--rest_max_body_bytes_in_flight",
        "5000",
        "--rest_api_timeout_in_ms",
        "3000",
        log_path=str(tmp_path / "s.log"),
    ).wait_ready()
    try:
        stalled = stalled_rest_body(server.rest_port, "toy", 4990)
        time.sleep(0.5)
        started = time.monotonic()
        refused = requests.post(server.rest_url + PREDICT, data=BODY, timeout=30)
        assert refused.status_code == 503 and time.monotonic() - started < 2
        assert "bytes of request bodies held" in refused.json()["error"]
        grpc_answer = GrpcClient(server.grpc_target).predict("toy", {"x": np.array([1.0], np.float32)})
        assert grpc_answer.outputs["y"].tolist() == [1.5]  # gRPC messages are not in the REST budget
        assert _answer(stalled, timeout=20).startswith(b"HTTP/1.1 408")
        stalled.close()
        assert _served(server) == (200, [1.5])
    finally:
        server.stop()


def test_under_a_low_soft_limit_idle_connections_do_not_stop_either_api(toy, tmp_path):
    """The server raises its soft limit on open files to the hard one: 400 idle connections to a server
    started under a soft limit of 256 leave both ports answering."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 2048:
        pytest.skip(f"the hard limit on open files here is {hard}: too low to show the soft one raised")
    resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))  # inherited by the server
    try:
        server = toy_server(toy, log_path=str(tmp_path / "s.log"))
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    idle: list[socket.socket] = []
    try:
        server.wait_ready()
        log = server.log()
        assert "open files: limit raised from 256 to" in log
        assert "FutureWarning" not in log  # the server's log starts with the server's own lines
        # gRPC's connection limits by default (the test above shortens them to see them work)
        assert "handshake within 30000 ms, closed after 30000 ms with no call, GOAWAY at 60000 ms" in log
        idle = [connection_sending(port) for port in (server.rest_port, server.grpc_port) for _ in range(200)]
        time.sleep(0.5)
        assert _served(server) == (200, [1.5])
    finally:
        for sock in idle:
            sock.close()
        server.stop()


def _stop(server) -> tuple[int, float]:
    """SIGTERM to the server: its exit code and how long it took to exit."""
    started = time.monotonic()
    server.process.terminate()
    code = server.process.wait(timeout=30)
    return code, time.monotonic() - started


def test_sigterm_with_stalled_clients_connected_stops_the_server_in_seconds(toy, tmp_path):
    """Clients stalled mid-request hold no shutdown: both APIs stop together within their grace
    (SHUTDOWN_GRACE_S), the process exits 0. Before, aiohttp waited up to 60 s for the stalled REST
    bodies, the server's 5 s bound on that raised, and it exited 1 with a traceback after 7-15 s.

    The bound is relative to the same server stopped with no client connected, on the same machine
    a moment before: the process's own exit (TensorFlow's teardown) takes seconds more on a machine
    with less CPU to spare, and the stalled clients may add the grace and no more."""
    idle = toy_server(toy, log_path=str(tmp_path / "idle.log")).wait_ready()
    try:
        with requests.Session() as session:
            assert session.post(idle.rest_url + PREDICT, data=BODY, timeout=30).status_code == 200
            idle_code, idle_took = _stop(idle)
    finally:
        idle.stop()
    assert idle_code == 0, (tmp_path / "idle.log").read_text()[-3000:]

    log = tmp_path / "s.log"
    server = toy_server(toy, log_path=str(log)).wait_ready()
    try:
        held = [stalled_rest_body(server.rest_port, "toy", 1000) for _ in range(5)]
        held += [connection_sending(server.rest_port, b"POST /v1/models/toy:predict HTTP/1.1\r\n") for _ in range(3)]
        held += [stalled_grpc_calls(server.grpc_port, 5) for _ in range(3)]
        held.append(stalled_grpc_calls(server.grpc_port, 0))
        with requests.Session() as session:  # and a kept-alive connection after an answered predict
            assert session.post(server.rest_url + PREDICT, data=BODY, timeout=30).status_code == 200
            time.sleep(0.5)  # the server has read what the stalled clients sent
            code, took = _stop(server)
        for sock in held:
            sock.close()
    finally:
        server.stop()
    text = log.read_text()
    assert code == 0, text[-3000:]
    assert took < idle_took + SHUTDOWN_GRACE_S + 2, (took, idle_took, text[-3000:])
    assert "shutting down" in text and "Traceback" not in text
