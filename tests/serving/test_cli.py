"""`python -m serving.model_server`: refusing bad flags and files with a message and a non-zero exit."""

from __future__ import annotations

import os
import socket

import numpy as np
import pytest

from serving.client import make_client
from serving.model_server.process import free_port
from tests.conftest import imported_modules, run_module
from tests.serving.toy_model import model_server


def run(*args, timeout=120, env=None):
    return run_module("serving.model_server", *args, timeout=timeout, env=env)


def test_no_model_given_exits_2_with_a_message():
    result = run("--port", str(free_port()))
    assert result.returncode == 2
    assert "--model_base_path" in result.stderr


def test_bad_flags_are_refused_before_tensorflow_is_imported(toy_models):
    """A mistake in the flags costs a fraction of a second, not TensorFlow's import (seconds)."""
    env = {**os.environ, "PYTHONPROFILEIMPORTTIME": "1"}
    for args, message in [
        (("--event_loop", "tokio"), "--event_loop must be one of"),
        (("--rest_max_body_bytes_in_flight", "0"), "--rest_max_body_bytes_in_flight must be at least 1"),
    ]:
        result = run("--model_config_file", toy_models["config"], *args, env=env)
        imported = imported_modules(result.stderr)
        assert result.returncode == 2 and message in result.stderr
        assert "serving.model_server.config" in imported and "tensorflow" not in imported


def test_unparsable_model_config_file_exits_2(tmp_path):
    config = tmp_path / "models.config"
    config.write_text("model_config_list { config { nme: 'x' } }")
    result = run("--model_config_file", str(config), "--port", str(free_port()))
    assert result.returncode == 2
    assert "models.config" in result.stderr and "ModelServerConfig" in result.stderr


def test_bad_batching_parameters_exit_2(tmp_path, toy_models):
    batching = tmp_path / "batching.config"
    batching.write_text("max_batch_size { value: 0 }")
    result = run(
        "--model_config_file",
        toy_models["config"],
        "--enable_batching",
        "--batching_parameters_file",
        str(batching),
        "--port",
        str(free_port()),
    )
    assert result.returncode == 2
    assert "max_batch_size" in result.stderr


def test_port_in_use_exits_1_with_a_message(toy_models):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run(
            "--model_config_file",
            toy_models["config"],
            "--port",
            str(free_port()),
            "--rest_api_port",
            str(port),
            "--file_system_poll_wait_seconds",
            "0",
        )
    assert result.returncode == 1
    assert "cannot start" in result.stderr


def test_binds_127_0_0_1_and_runs_on_uvloop_by_default(toy_models, tmp_path):
    with model_server("--model_config_file", toy_models["config"], log_path=str(tmp_path / "s.log"), poll=0) as server:
        assert f"127.0.0.1:{server.grpc_port}" in server.log() and f"127.0.0.1:{server.rest_port}" in server.log()
        assert "event loop: uvloop" in server.log()


def test_asyncio_event_loop_on_request_serves_both_apis(toy_models, tmp_path):
    flags = ("--model_config_file", toy_models["config"], "--event_loop", "asyncio")
    with model_server(*flags, log_path=str(tmp_path / "s.log"), poll=0) as server:
        assert "event loop: asyncio" in server.log()
        for transport in ("rest", "grpc"):
            client = make_client(transport, rest_url=server.rest_url, grpc_target=server.grpc_target)
            answer = client.predict("toy", {"x": np.array([2.0, 4.0], np.float32)})
            assert answer.outputs["y"].tolist() == [3.0, 4.0], transport  # 0.5 x + 2 (version 2)


def test_unknown_event_loop_exits_2(toy_models):
    result = run("--model_config_file", toy_models["config"], "--event_loop", "tokio", "--port", str(free_port()))
    assert result.returncode == 2
    assert "--event_loop must be one of auto, uvloop, asyncio" in result.stderr


@pytest.mark.parametrize(
    "flag, value, message",
    [
        ("--rest_max_body_bytes_in_flight", "0", "--rest_max_body_bytes_in_flight must be at least 1, got 0"),
        ("--rest_api_idle_timeout_seconds", "-1", "must be a positive number of seconds, got '-1'"),
        ("--rest_api_idle_timeout_seconds", "nan", "must be a positive number of seconds, got 'nan'"),
    ],
)
def test_slow_client_limits_out_of_range_exit_2(toy_models, flag, value, message):
    result = run("--model_config_file", toy_models["config"], flag, value, "--port", str(free_port()))
    assert result.returncode == 2
    assert message in result.stderr


@pytest.mark.parametrize(
    "args, message",
    [
        # grpc bound 99999 as 34463 and aiohttp 70000 as 4464 (the port modulo 65536), silently
        (("--port", "99999"), "--port must be within 0..65535 (0: any free port), got 99999"),
        (("--port", "0", "--rest_api_port", "70000"), "--rest_api_port must be within 0..65535"),
        (("--port", "0", "--max_request_bytes", "0"), "--max_request_bytes must be at least 1, got 0"),
        (("--port", "0", "--rest_api_timeout_in_ms", "0"), "--rest_api_timeout_in_ms must be at least 1, got 0"),
    ],
)
def test_ports_and_limits_out_of_range_exit_2(toy_models, args, message):
    result = run("--model_config_file", toy_models["config"], *args)
    assert result.returncode == 2
    assert message in result.stderr


def test_a_picked_port_taken_before_the_server_binds_it_is_picked_again(toy_models, tmp_path, monkeypatch):
    """ServerProcess picks free ports, then the child binds them: another process can take one in between.
    The server exits 'cannot start'; ServerProcess starts it again on fresh ports instead of failing."""
    import serving.model_server.process as process

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        ports = iter([taken.getsockname()[1], free_port()])
        monkeypatch.setattr(process, "free_port", lambda: next(ports, None) or free_port())
        with model_server(
            "--model_config_file", toy_models["config"], log_path=str(tmp_path / "s.log"), poll=0
        ) as server:
            assert server.grpc_port != taken.getsockname()[1]
            assert f"127.0.0.1:{server.grpc_port}" in server.log()
