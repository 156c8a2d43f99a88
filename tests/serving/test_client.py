"""serving/client.py's RestClient on its own: how it addresses versions, names a lone output, and turns
every kind of failure into ModelServerError with TF Serving's status name.

The server here is a scripted HTTP server on 127.0.0.1 that answers as TensorFlow Serving does (the
same JSON, status codes and error bodies), so each failure can be made on demand; the client against
the real model server is tested in test_captcha_serving.py, test_rest_api.py and the frontend tests.
"""

from __future__ import annotations

import base64
import contextlib
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from serving.client import ModelServerError, RestClient, ServerUnavailable, _from_json


class ScriptedServer:
    """Answers each (method, path) from `routes`: a (status, body) pair or a callable returning one.
    Every request is recorded as (method, path, parsed JSON body)."""

    def __init__(self, routes: dict) -> None:
        self.routes = routes
        self.seen: list[tuple[str, str, object]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                body = json.loads(raw) if raw else None
                server.seen.append((method, self.path, body))
                route = server.routes.get((method, self.path), (404, {"error": f"no route {self.path}"}))
                status, payload = route(body) if callable(route) else route
                data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # a client that gave up
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)

            def do_GET(self):  # noqa: N802 - http.server's naming
                self._answer("GET")

            def do_POST(self):  # noqa: N802 - http.server's naming
                self._answer("POST")

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def scripted():
    servers = []

    def make(routes):
        servers.append(ScriptedServer(routes))
        return servers[-1]

    yield make
    for server in servers:
        server.close()


def status_of(*versions: int) -> tuple[int, dict]:
    return 200, {
        "model_version_status": [
            {"version": str(v), "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}
            for v in versions
        ]
    }


METADATA = (
    200,
    {"metadata": {"signature_def": {"signature_def": {"serving_default": {"outputs": {"probabilities": {}}}}}}},
)


def test_predict_addresses_the_newest_available_version_and_names_a_lone_output(scripted):
    server = scripted(
        {
            ("GET", "/v1/models/digits"): status_of(2, 3),
            ("GET", "/v1/models/digits/versions/3/metadata"): METADATA,
            ("POST", "/v1/models/digits/versions/3:predict"): (200, {"outputs": [[0.1, 0.9]]}),
        }
    )
    client = RestClient(server.url)
    answer = client.predict("digits", {"image": [b"\x89PNG raw bytes"]})
    assert answer.version == 3 and answer.transport == "rest"
    np.testing.assert_allclose(answer.outputs["probabilities"], [[0.1, 0.9]])
    [(_, _, body)] = [s for s in server.seen if s[0] == "POST"]
    assert body == {"inputs": {"image": [{"b64": base64.b64encode(b"\x89PNG raw bytes").decode()}]}}
    client.predict("digits", {"image": [b"again"]})  # the output's name is remembered, not asked again
    assert sum(path.endswith("/metadata") for _, path, _ in server.seen) == 1


def test_a_version_unloaded_between_status_and_predict_is_retried_once_on_the_new_one(scripted):
    statuses = iter([status_of(3), status_of(4)])
    server = scripted(
        {
            ("GET", "/v1/models/m"): lambda _: next(statuses),
            ("POST", "/v1/models/m/versions/3:predict"): (404, {"error": "Servable not found for request"}),
            ("POST", "/v1/models/m/versions/4:predict"): (200, {"outputs": {"y": [1.5]}}),
        }
    )
    answer = RestClient(server.url).predict("m", {"x": [1.0]})
    assert answer.version == 4 and answer.outputs["y"].tolist() == [1.5]


def test_an_explicit_version_that_is_missing_is_not_retried(scripted):
    server = scripted({("POST", "/v1/models/m/versions/7:predict"): (404, {"error": "Servable not found"})})
    with pytest.raises(ModelServerError) as raised:
        RestClient(server.url).predict("m", {"x": [1.0]}, version=7)
    assert (raised.value.code, raised.value.http_status) == ("NOT_FOUND", 404)
    assert "Servable not found" in raised.value.message
    assert len(server.seen) == 1


@pytest.mark.parametrize(
    "status, body, code, kind",
    [
        (400, {"error": "Expected DT_STRING"}, "INVALID_ARGUMENT", ModelServerError),
        (503, {"error": "batch queue full"}, "UNAVAILABLE", ServerUnavailable),
        (504, {"error": "deadline"}, "DEADLINE_EXCEEDED", ModelServerError),
        (500, b"<html>proxy error</html>", "UNKNOWN", ModelServerError),  # not JSON: the text is the message
    ],
)
def test_error_answers_keep_tf_servings_status_names(scripted, status, body, code, kind):
    server = scripted({("GET", "/v1/models/m"): (status, body)})
    with pytest.raises(kind) as raised:
        RestClient(server.url).status("m")
    assert raised.value.code == code
    expected = body.decode() if isinstance(body, bytes) else body["error"]
    assert expected in raised.value.message


def test_nothing_listening_is_server_unavailable_with_the_address():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    with pytest.raises(ServerUnavailable, match=f"127.0.0.1:{port}"):
        RestClient(f"http://127.0.0.1:{port}", timeout=5).status("m")


def test_a_server_too_slow_for_the_timeout_is_deadline_exceeded(scripted):
    def slow(_):
        time.sleep(1.5)
        return status_of(1)

    server = scripted({("GET", "/v1/models/m"): slow})
    started = time.monotonic()
    with pytest.raises(ModelServerError) as raised:
        RestClient(server.url, timeout=0.3).status("m")
    assert raised.value.code == "DEADLINE_EXCEEDED" and time.monotonic() - started < 1.4


def test_no_available_version_is_not_found(scripted):
    server = scripted(
        {("GET", "/v1/models/m"): (200, {"model_version_status": [{"version": "1", "state": "LOADING"}]})}
    )
    with pytest.raises(ModelServerError, match="no version of model m is available"):
        RestClient(server.url).latest_version("m")


def test_json_outputs_become_arrays_and_b64_becomes_bytes():
    assert _from_json([[1, 2], [3, 4]]).shape == (2, 2)
    decoded = _from_json([{"b64": base64.b64encode(b"\x00\xff").decode()}, "text"])
    assert decoded.dtype == object and decoded.tolist() == [b"\x00\xff", b"text"]
