"""`make serve` end to end (model server + frontend processes), and the captcha page in a real headless browser."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading

import pytest
import requests

from serving.model_server.process import ROOT, free_port, wait_for
from tests.browser import click_through, needs_chromium, screenshot, start_chrome
from tests.conftest import run_module
from tests.pipelines.test_captcha_pipeline import png


def _start_serve(captcha_quick_run, workdir) -> dict:
    """`python -m serving` (what `make serve` runs) on free ports, once it says it is ready."""
    ports = {"grpc": free_port(), "rest": free_port(), "web": free_port()}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "serving",
            "--serving-dir",
            captcha_quick_run["serving"],
            "--runs-dir",
            captcha_quick_run["out"],
            "--grpc-port",
            str(ports["grpc"]),
            "--rest-port",
            str(ports["rest"]),
            "--frontend-port",
            str(ports["web"]),
        ],
        cwd=str(workdir),
        env={**os.environ, "PYTHONPATH": ROOT},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{ports['web']}"
    lines: list[str] = []  # read as they come, so no test depends on another having waited
    reader = threading.Thread(target=lambda: lines.extend(process.stdout), daemon=True)
    reader.start()

    def up():
        if process.poll() is not None:
            reader.join(5)
            raise RuntimeError("".join(lines))
        if not any(line.startswith("demo:") for line in list(lines)):
            return False  # the server prints the line once both processes answer and Ctrl-C is handled
        try:
            return requests.get(url + "/ping", timeout=1).ok
        except (requests.ConnectionError, requests.Timeout):  # still starting
            return False

    wait_for(up, timeout=180, interval=0.5)
    return {"process": process, "url": url, "ports": ports, "lines": lines, "reader": reader}


def _stop(process) -> None:
    """Ctrl-C, so `make serve` stops its model server and frontend too (SIGKILL would orphan them)."""
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def served(captcha_quick_run, tmp_path_factory):
    started = _start_serve(captcha_quick_run, tmp_path_factory.mktemp("make_serve"))
    yield started
    _stop(started["process"])


def test_make_serve_answers_the_book_api_over_http(served):
    response = requests.post(
        served["url"] + "/predict", files={"image": ("c.png", png("1234"), "image/png")}, timeout=30
    )
    assert response.status_code == 200
    body = response.json()
    assert body["success"] is True and re.fullmatch(r"[0-9]{4}", body["prediction"])
    status = requests.get(f"http://127.0.0.1:{served['ports']['rest']}/v1/models/captcha", timeout=10).json()
    assert status["model_version_status"][0]["state"] == "AVAILABLE"


@needs_chromium
def test_browser_uploads_a_captcha_and_reads_the_prediction(served, tmp_path):
    from selenium.webdriver.common.by import By

    image = tmp_path / "captcha.png"
    image.write_bytes(png("4821"))
    driver = start_chrome("1000,900")
    try:
        driver.get(served["url"] + "/")
        driver.find_element(By.ID, "image").send_keys(str(image))
        prediction = click_through(driver, driver.find_element(By.ID, "upload"), "#prediction", timeout=60)
        assert re.fullmatch(r"[0-9]{4}", prediction.text)
        assert driver.find_element(By.ID, "transport").text == "rest"
        assert driver.find_element(By.ID, "captcha-image").get_attribute("src").startswith("data:image/png;base64,")
        screenshot(driver, "browser_captcha_page.png")
    finally:
        driver.quit()


def test_ctrl_c_stops_both_processes(captcha_quick_run, tmp_path):
    served = _start_serve(captcha_quick_run, tmp_path)  # its own: the other tests keep theirs running
    process = served["process"]
    try:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=60)
        served["reader"].join(10)
        output = "".join(served["lines"])
        assert process.returncode == 0, output
        assert "demo:" in output and "stopping" in output
        for port in served["ports"].values():
            with pytest.raises(requests.ConnectionError):
                requests.get(f"http://127.0.0.1:{port}/", timeout=2)
    finally:
        _stop(process)


def test_make_serve_without_a_pushed_model_says_to_run_the_pipeline(tmp_path):
    result = run_module("serving", "--serving-dir", str(tmp_path))
    assert result.returncode == 1
    assert "make pipeline" in result.stderr
    taken = tmp_path / "a_file"
    taken.write_text("")
    result = run_module("serving", "--serving-dir", str(taken))
    assert result.returncode == 2
    assert result.stderr.strip() == f"make serve: --serving-dir {taken} is a file, not a folder of pushed models."


@pytest.mark.parametrize(
    "command, message",
    [
        # Out of range, the frontend's wait for itself died with a traceback, and the model server
        # was told a port it would have taken modulo 65536.
        (("serving", "--frontend-port", "99999"), "argument --frontend-port: a port must be within 1..65535"),
        (("serving", "--grpc-port", "70000"), "argument --grpc-port: a port must be within 0..65535, got 70000"),
        (("serving", "--rest-port", "x"), "argument --rest-port: not a port number: 'x'"),
        (("serving", "--replicas", "0"), "--replicas must be >= 1, got 0"),
        # A mistyped count started that many TensorFlows (a thousand: the machine ran out of memory).
        (("serving", "--replicas", "100000"), "--replicas 100000 is more than 4 per CPU"),
        (("serving.model_server", "--replicas", "100000"), "model_server: --replicas 100000 is more than 4 per CPU"),
        (("serving.model_server", "--replicas", "0"), "model_server: --replicas must be >= 1, got 0"),
        (("serving.frontend", "--port", "0"), "argument --port: a port must be within 1..65535, got 0"),
        # An empty charset started the model server, then the frontend refused it and only its log said why
        (("serving", "--captcha-charset", ""), "argument --captcha-charset: the characters must be at least one"),
        (("serving.frontend", "--captcha-charset", "aa"), "none twice, got 'aa'"),
    ],
)
def test_ports_out_of_range_and_bad_charsets_are_usage_errors(tmp_path, command, message):
    result = run_module(*command, *(("--serving-dir", str(tmp_path)) if command[0] == "serving" else ()))
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr
