"""Hot loading of new versions under load, broken versions, and config reloads, on real server processes."""

from __future__ import annotations

import os
import threading
import time

import pytest
from tensorflow_serving.config import model_server_config_pb2

from serving.client import GrpcClient, ModelServerError, RestClient
from serving.model_server.process import wait_for
from tests.serving.toy_model import model_server, toy_server, write_toy_model

POLL_SECONDS = 0.5


@pytest.fixture
def polling_server(tmp_path):
    base = str(tmp_path / "toy")
    write_toy_model(base, 1)
    server = toy_server(base, log_path=str(tmp_path / "server.log"), poll=POLL_SECONDS)
    try:
        yield server.wait_ready(), base
    finally:
        server.stop()


class SteadyLoad:
    """Clients sending predicts back to back; every answer's offset tells which version served it."""

    def __init__(self, server, threads_per_transport: int = 2) -> None:
        self.failures: list[str] = []
        self.served: list[tuple[float, float]] = []  # (time, offset)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        clients = [RestClient(server.rest_url) for _ in range(threads_per_transport)]
        clients += [GrpcClient(server.grpc_target) for _ in range(threads_per_transport)]
        self._threads = [threading.Thread(target=self._run, args=(c,)) for c in clients]

    def _run(self, client) -> None:
        while not self._stop.is_set():
            try:
                y = float(client.predict("toy", {"x": [2.0]}).outputs["y"][0])
                with self._lock:
                    self.served.append((time.monotonic(), y - 1.0))
            except Exception as e:  # noqa: BLE001 - every failure is recorded and asserted on
                with self._lock:
                    self.failures.append(repr(e))

    def __enter__(self):
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        for thread in self._threads:
            thread.join(30)

    def first_time_serving(self, offset: float) -> float | None:
        with self._lock:
            return next((t for t, o in self.served if o == offset), None)


def test_new_version_is_swapped_in_under_load_with_zero_failed_requests(polling_server):
    server, base = polling_server
    with SteadyLoad(server) as load:
        wait_for(lambda: len(load.served) > 20, timeout=30)
        pushed = time.monotonic()
        write_toy_model(base, 2)
        wait_for(lambda: load.first_time_serving(2.0), timeout=30)
        swap_seconds = load.first_time_serving(2.0) - pushed
        time.sleep(1.0)  # keep sending across the unload of version 1
    assert load.failures == []
    assert len(load.served) > 50
    # Served within one poll interval plus the load and warmup of a small model.
    assert swap_seconds < POLL_SECONDS + 5, swap_seconds
    rest = RestClient(server.rest_url)
    wait_for(lambda: {s.version: s.state for s in rest.status("toy")} == {2: "AVAILABLE", 1: "END"}, timeout=30)
    assert "Successfully loaded servable version {name: toy version: 2}" in server.log()
    assert "Unloaded servable version {name: toy version: 1}" in server.log()


def test_broken_version_is_reported_and_the_previous_one_keeps_serving(polling_server):
    server, base = polling_server
    os.makedirs(os.path.join(base, "7"))
    with open(os.path.join(base, "7", "saved_model.pb"), "wb") as f:
        f.write(b"this is not a SavedModel")
    client = GrpcClient(server.grpc_target)
    wait_for(lambda: any(s.version == 7 for s in client.status("toy")), timeout=30)
    (broken,) = [s for s in client.status("toy") if s.version == 7]
    assert broken.state == "END"
    assert broken.error_code != "OK" and broken.error_message
    assert {s.version: s.state for s in client.status("toy")}[1] == "AVAILABLE"
    time.sleep(2 * POLL_SECONDS)  # further polls neither retry it nor drop version 1
    prediction = client.predict("toy", {"x": [2.0]})
    assert prediction.version == 1 and float(prediction.outputs["y"][0]) == 2.0
    assert "Failed to load servable version {name: toy version: 7}" in server.log()


def test_incomplete_version_directory_is_ignored_until_complete(polling_server):
    server, base = polling_server
    os.makedirs(os.path.join(base, "3", "variables"))  # no saved_model.pb yet
    time.sleep(3 * POLL_SECONDS)
    client = RestClient(server.rest_url)
    assert [s.version for s in client.status("toy")] == [1]
    assert client.predict("toy", {"x": [2.0]}).version == 1


def config_for(**models) -> model_server_config_pb2.ModelServerConfig:
    config = model_server_config_pb2.ModelServerConfig()
    for name, base in models.items():
        config.model_config_list.config.add(name=name, base_path=base, model_platform="tensorflow")
    return config


def test_reload_config_through_model_service_adds_and_removes_models(toy_models, tmp_path):
    toy, other = os.path.join(toy_models["base"], "toy"), os.path.join(toy_models["base"], "other")
    server = toy_server(
        toy,
        log_path=str(tmp_path / "server.log"),
        poll=0,
    ).wait_ready()
    try:
        client = GrpcClient(server.grpc_target)
        with pytest.raises(ModelServerError) as raised:
            client.predict("other", {"x": [1.0]})
        assert raised.value.code == "NOT_FOUND"
        client.reload_config(config_for(toy=toy, other=other))
        assert client.predict("other", {"x": [2.0]}).version == 5  # loaded before the reload returned
        client.reload_config(config_for(other=other))
        with pytest.raises(ModelServerError) as raised:
            client.predict("toy", {"x": [1.0]})
        assert raised.value.code == "NOT_FOUND"
        bad = config_for(other=other)
        bad.model_config_list.config[0].version_labels["stable"] = 99
        with pytest.raises(ModelServerError) as raised:
            client.reload_config(bad)
        assert raised.value.code == "FAILED_PRECONDITION"
    finally:
        server.stop()


def test_model_config_file_is_polled(toy_models, tmp_path):
    from google.protobuf import text_format

    toy, other = os.path.join(toy_models["base"], "toy"), os.path.join(toy_models["base"], "other")
    path = str(tmp_path / "models.config")
    with open(path, "w") as f:
        f.write(text_format.MessageToString(config_for(toy=toy)))
    server = model_server(
        "--model_config_file",
        path,
        "--model_config_file_poll_wait_seconds",
        "0.5",
        log_path=str(tmp_path / "server.log"),
        poll=0,
    ).wait_ready()
    try:
        client = RestClient(server.rest_url)
        with open(path + ".tmp", "w") as f:
            f.write(text_format.MessageToString(config_for(toy=toy, other=other)))
        os.replace(path + ".tmp", path)
        wait_for(lambda: _available(client, "other"), timeout=30)
        assert client.predict("other", {"x": [2.0]}).version == 5
        assert client.predict("toy", {"x": [2.0]}).version == 2
    finally:
        server.stop()


def _available(client, model) -> bool:
    try:
        return any(s.state == "AVAILABLE" for s in client.status(model))
    except ModelServerError:
        return False
