"""`python -m serving rollback`: a served model goes back to an earlier version and forward again
through models.config, under load, with no failed request; the Pusher keeps the pin and the pinned
version."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import pytest
import requests

from components.pusher.publish import pinned_versions, prune, write_models_config
from serving.model_server.process import ROOT, ServerProcess
from serving.rollback import read_config, set_version
from tests.serving.toy_model import write_toy_model


def rollback(serving_dir: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "serving", "rollback", *args, "--serving-dir", serving_dir],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
def serving_dir(tmp_path):
    for version in (1, 2):
        write_toy_model(os.path.join(tmp_path, "toy"), version)  # answers 0.5 x + version
    write_models_config(str(tmp_path))
    return str(tmp_path)


def test_rollback_and_back_under_load_fails_no_request(serving_dir, tmp_path_factory):
    server = ServerProcess(
        "--model_config_file",
        os.path.join(serving_dir, "models.config"),
        "--model_config_file_poll_wait_seconds",
        "0.5",
        "--file_system_poll_wait_seconds",
        "0.5",
        log_path=str(tmp_path_factory.mktemp("logs") / "rollback.log"),
    )
    server.wait_ready()
    answers: list[float] = []
    failures: list[str] = []
    stop = threading.Event()

    def client():
        with requests.Session() as session:
            while not stop.is_set():
                try:
                    response = session.post(
                        f"{server.rest_url}/v1/models/toy:predict", json={"instances": [0.0]}, timeout=10
                    )
                    if response.status_code != 200:
                        failures.append(f"{response.status_code} {response.text}")
                    else:
                        answers.append(response.json()["predictions"][0])  # 0.5 * 0 + version
                except requests.RequestException as error:
                    failures.append(repr(error))

    def served_version(expected: float, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if answers and answers[-1] == expected and answers[-20:].count(expected) == len(answers[-20:]):
                return
            time.sleep(0.1)
        raise AssertionError(f"still answering {answers[-5:]} after {timeout}s, expected {expected}")

    clients = [threading.Thread(target=client, daemon=True) for _ in range(4)]
    try:
        for thread in clients:
            thread.start()
        served_version(2.0)
        done = rollback(serving_dir, "toy", "--to", "1")
        assert done.returncode == 0 and "version 1 is served" in done.stdout, done.stderr
        served_version(1.0)
        status = requests.get(f"{server.rest_url}/v1/models/toy", timeout=10).json()["model_version_status"]
        assert [s["version"] for s in status if s["state"] == "AVAILABLE"] == ["1"]
        done = rollback(serving_dir, "toy", "--latest")
        assert done.returncode == 0, done.stderr
        served_version(2.0)
    finally:
        stop.set()
        for thread in clients:
            thread.join(15)
        server.stop()
    assert not failures, failures[:5]
    assert len(answers) > 50 and set(answers) == {1.0, 2.0}


@pytest.mark.parametrize(
    "args,message",
    [
        (("nope", "--to", "1"), "has no model 'nope'"),
        (("toy", "--to", "7"), "has no version 7"),
    ],
)
def test_bad_rollbacks_say_why_and_change_nothing(serving_dir, args, message):
    before = open(os.path.join(serving_dir, "models.config")).read()
    done = rollback(serving_dir, *args)
    assert done.returncode == 2 and message in done.stderr
    assert open(os.path.join(serving_dir, "models.config")).read() == before


def test_the_pusher_keeps_a_pin_and_never_prunes_the_pinned_version(serving_dir):
    set_version(serving_dir, "toy", 1)
    write_toy_model(os.path.join(serving_dir, "toy"), 3)
    assert prune(os.path.join(serving_dir, "toy"), 1, pinned_versions(serving_dir, "toy")) == [2]
    assert sorted(os.listdir(os.path.join(serving_dir, "toy"))) == ["1", "3"]
    write_models_config(serving_dir)  # what the Pusher does after publishing version 3
    (entry,) = read_config(os.path.join(serving_dir, "models.config")).model_config_list.config
    assert list(entry.model_version_policy.specific.versions) == [1]
    set_version(serving_dir, "toy", None)
    (entry,) = read_config(os.path.join(serving_dir, "models.config")).model_config_list.config
    assert entry.model_version_policy.latest.num_versions == 1 and pinned_versions(serving_dir, "toy") == []
