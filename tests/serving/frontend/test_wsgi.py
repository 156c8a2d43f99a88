"""The frontend as production runs it: gunicorn over serving/frontend/wsgi.py, configured by the
environment, in a Python that never imports TensorFlow."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

import pytest
import requests

from serving.model_server.process import ROOT, free_port, wait_for


def test_the_wsgi_app_and_the_rest_client_import_no_tensorflow():
    code = (
        "import sys; import serving.frontend.wsgi as w; "
        "assert w.app is not None; "
        "heavy = sorted(m for m in ('tensorflow', 'apache_beam', 'tensorflow_data_validation', 'grpc') if m in sys.modules); "
        "print(heavy)"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]"


def test_the_environment_sets_the_config(monkeypatch):
    from serving.frontend.wsgi import config_from_environment

    config = config_from_environment(
        {
            "FRONTEND_REST_URL": "http://10.0.0.5:8501",
            "FRONTEND_TIMEOUT_SECONDS": "2.5",
            "FRONTEND_MAX_IMAGE_BYTES": "4096",
        }
    )
    assert (
        config.rest_url == "http://10.0.0.5:8501" and config.timeout_seconds == 2.5 and config.max_image_bytes == 4096
    )
    with pytest.raises(ValueError, match=r"FRONTEND_\*\): transport"):
        config_from_environment({"FRONTEND_TRANSPORT": "carrier-pigeon"})
    # int()'s "invalid literal for int() with base 10" did not say which variable
    with pytest.raises(ValueError, match="FRONTEND_MAX_IMAGE_BYTES: expected an integer, got 'abc'"):
        config_from_environment({"FRONTEND_MAX_IMAGE_BYTES": "abc"})
    with pytest.raises(ValueError, match="FRONTEND_TIMEOUT_SECONDS: expected a number, got '2,5'"):
        config_from_environment({"FRONTEND_TIMEOUT_SECONDS": "2,5"})


@pytest.mark.skipif(
    not shutil.which("gunicorn", path=os.path.dirname(sys.executable)), reason="gunicorn is not installed"
)
def test_gunicorn_serves_the_pages_and_says_when_the_model_server_is_down(tmp_path):
    port = free_port()
    env = {
        **os.environ,
        "FRONTEND_REST_URL": f"http://127.0.0.1:{free_port()}",  # nothing listens there
        "FRONTEND_RUNS_DIR": str(tmp_path),
        "FRONTEND_SECRET_KEY": "test",
    }
    process = subprocess.Popen(
        [
            os.path.join(os.path.dirname(sys.executable), "gunicorn"),
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "2",
            "serving.frontend.wsgi:app",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:

        def up():
            if process.poll() is not None:
                raise RuntimeError(process.stdout.read())
            try:
                return requests.get(url + "/ping", timeout=1).ok
            except (requests.ConnectionError, requests.Timeout):  # still starting (a worker booting)
                return False

        wait_for(up, timeout=60, interval=0.3)
        page = requests.get(url + "/mnist", timeout=10)
        assert page.status_code == 200 and re.search(r'name="csrf_token" value="[^"]+"', page.text)
        assert page.headers["X-Frame-Options"] == "DENY"
        down = requests.post(url + "/predict", json={"image": "aGVsbG8="}, timeout=10)
        assert down.status_code == 400  # not an image: refused before the model server is asked
        png = (
            b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x00\x00\x00\x00:~\x9bU"
            b"\x00\x00\x00\nIDATx\x9cc`\x00\x00\x00\x02\x00\x01H\xaf\xa4q\x00\x00\x00\x00IEND\xaeB`\x82"
        )
        down = requests.post(url + "/api/mnist", files={"image": ("d.png", png, "image/png")}, timeout=10)
        assert down.status_code == 503 and "unavailable" in down.json()["error"]
    finally:
        process.terminate()
        process.wait(30)
