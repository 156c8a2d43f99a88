"""TF Serving's REST API, spoken over real HTTP to a real server process (raw requests, not our client)."""

from __future__ import annotations

import base64
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests


def get(server, path):
    return requests.get(server.rest_url + path, timeout=30)


def post(server, path, body=None, data=None):
    return requests.post(server.rest_url + path, json=body, data=data, timeout=30)


# --- model status and metadata ------------------------------------------------------------------
def test_model_status_lists_every_loaded_version_as_available(api_server):
    response = get(api_server, "/v1/models/toy")
    assert response.status_code == 200
    statuses = response.json()["model_version_status"]
    assert {s["version"] for s in statuses} == {"1", "2"}
    for status in statuses:
        assert status["state"] == "AVAILABLE"
        assert status["status"] == {"error_code": "OK", "error_message": ""}


def test_status_of_one_version_and_of_a_label(api_server):
    assert [s["version"] for s in get(api_server, "/v1/models/toy/versions/1").json()["model_version_status"]] == ["1"]
    assert [s["version"] for s in get(api_server, "/v1/models/toy/labels/canary").json()["model_version_status"]] == [
        "2"
    ]


def test_metadata_returns_the_signature_defs(api_server):
    body = get(api_server, "/v1/models/toy/metadata").json()
    assert body["model_spec"] == {"name": "toy", "signature_name": "", "version": "2"}
    signatures = body["metadata"]["signature_def"]["signature_def"]
    assert set(signatures) == {"serving_default", "slow", "multi", "sum_pair", "classify", "regress"}
    assert signatures["classify"]["method_name"] == "tensorflow/serving/classify"
    assert signatures["serving_default"]["inputs"]["x"]["dtype"] == "DT_FLOAT"
    assert get(api_server, "/v1/models/toy/versions/1/metadata").json()["model_spec"]["version"] == "1"
    assert get(api_server, "/v1/models/toy/labels/stable/metadata").json()["model_spec"]["version"] == "1"


# --- predict ------------------------------------------------------------------------------------
def test_row_format_predict_uses_the_latest_version(api_server):
    response = post(api_server, "/v1/models/toy:predict", {"instances": [1.0, 2.0, 4]})
    assert response.status_code == 200
    assert response.json() == {"predictions": [2.5, 3.0, 4.0]}  # 0.5 x + 2 (version 2)


def test_versions_and_labels_address_their_own_model(api_server):
    one = post(api_server, "/v1/models/toy/versions/1:predict", {"instances": [2.0]}).json()
    stable = post(api_server, "/v1/models/toy/labels/stable:predict", {"instances": [2.0]}).json()
    canary = post(api_server, "/v1/models/toy/labels/canary:predict", {"instances": [2.0]}).json()
    assert one == stable == {"predictions": [2.0]}
    assert canary == {"predictions": [3.0]}


def test_columnar_format_with_named_inputs_and_b64_in_and_out(api_server):
    body = {
        "signature_name": "multi",
        "inputs": {"x": [0.0, 2.0], "tag": [{"b64": base64.b64encode(b"\x00\xffab").decode()}, "cd"]},
    }
    outputs = post(api_server, "/v1/models/toy:predict", body).json()["outputs"]
    assert outputs["y"] == [2.0, 3.0]
    assert outputs["tag_bytes"] == [
        {"b64": base64.b64encode(b"\x00\xffab").decode()},
        {"b64": base64.b64encode(b"cd").decode()},
    ]
    assert outputs["upper"][1] == "CD"


def test_row_format_with_named_inputs_returns_one_object_per_instance(api_server):
    body = {"signature_name": "multi", "instances": [{"x": 1.0, "tag": "a"}, {"x": 3.0, "tag": "b"}]}
    predictions = post(api_server, "/v1/models/toy:predict", body).json()["predictions"]
    assert predictions == [
        {"y": 2.5, "tag_bytes": {"b64": "YQ=="}, "upper": "A"},
        {"y": 3.5, "tag_bytes": {"b64": "Yg=="}, "upper": "B"},
    ]


def test_integer_matrix_input(api_server):
    body = {"signature_name": "sum_pair", "instances": [[1, 2], [30, 40]]}
    assert post(api_server, "/v1/models/toy:predict", body).json() == {"predictions": [3, 70]}


# --- classify and regress -----------------------------------------------------------------------
def test_classify_returns_label_score_pairs_per_example(api_server):
    body = {"signature_name": "classify", "examples": [{"x": 12.0}, {"x": -8.0}]}
    result = post(api_server, "/v1/models/toy:classify", body).json()["result"]
    assert [[label for label, _ in row] for row in result] == [["low", "high"], ["low", "high"]]
    assert result[0][1][1] > 0.99 and result[1][0][1] > 0.99


def test_regress_with_context_merged_into_examples(api_server):
    body = {"signature_name": "regress", "context": {"x": 100.0}, "examples": [{"x": 2.0}, {}]}
    assert post(api_server, "/v1/models/toy:regress", body).json() == {"result": [3.0, 52.0]}


# --- errors: TF Serving's codes, always {"error": ...}, never a 5xx -------------------------------
@pytest.mark.parametrize(
    "path,body,status,fragment",
    [
        ("/v1/models/nope:predict", {"instances": [1.0]}, 404, "Servable not found"),
        ("/v1/models/toy/versions/9:predict", {"instances": [1.0]}, 404, "Specific(toy, 9)"),
        ("/v1/models/toy/labels/beta:predict", {"instances": [1.0]}, 404, "label"),
        ("/v1/models/toy:predict", {"instances": []}, 400, "empty"),
        ("/v1/models/toy:predict", {}, 400, "instances"),
        ("/v1/models/toy:predict", {"instances": [1.0], "inputs": [1.0]}, 400, "both"),
        ("/v1/models/toy:predict", {"inputs": {"z": [1.0]}}, 400, "'z'"),
        ("/v1/models/toy:predict", {"instances": ["one"]}, 400, "numbers"),
        ("/v1/models/toy:predict", {"instances": [[1.0, 2.0]]}, 400, "shape"),
        ("/v1/models/toy:predict", {"signature_name": "sum_pair", "instances": [[1, 2], [3]]}, 400, "ragged"),
        ("/v1/models/toy:predict", {"signature_name": "sum_pair", "instances": [[1.5, 2]]}, 400, "int64"),
        ("/v1/models/toy:predict", {"signature_name": "nope", "instances": [1.0]}, 400, "nope"),
        (
            "/v1/models/toy:predict",
            {"signature_name": "multi", "instances": [{"x": 1.0, "tag": {"b64": "%%%"}}]},
            400,
            "base64",
        ),
        ("/v1/models/toy:classify", {"examples": [{"x": 1.0}]}, 400, "classification"),
        ("/v1/models/toy:regress", {"signature_name": "regress", "examples": []}, 400, "examples"),
        ("/v1/models/toy:regress", {"signature_name": "regress", "examples": [{"x": "text"}]}, 400, ""),
    ],
)
def test_bad_requests_get_tf_serving_status_codes(api_server, path, body, status, fragment):
    response = post(api_server, path, body)
    assert response.status_code == status, response.text
    assert fragment in response.json()["error"]


def test_unparsable_json_is_a_400(api_server):
    response = post(api_server, "/v1/models/toy:predict", data=b'{"instances": [1.0')
    assert response.status_code == 400
    assert "JSON" in response.json()["error"]


@pytest.mark.parametrize("depth", [100, 2_000, 100_000])
@pytest.mark.parametrize("opening,closing", [(b"[", b"]"), (b'{"a":', b"}")])
def test_deeply_nested_bodies_are_a_400_not_a_crash(api_server, depth, opening, closing):
    for body in (
        b'{"instances": ' + opening * depth + b"1" + closing * depth + b"}",
        b'{"instances": [{"x": ' + opening * depth + b"1" + closing * depth + b"}]}",
        b'{"examples": [' + opening * depth + b"1" + closing * depth + b"]}",
    ):
        response = post(api_server, "/v1/models/toy:predict", data=body)
        assert response.status_code == 400, response.text[:300]
        assert response.json()["error"]
    assert post(api_server, "/v1/models/toy:predict", {"instances": [1.0]}).status_code == 200


@pytest.mark.parametrize(
    "body",
    [
        b'{"instances": [{"tag": "\\ud800", "x": 1.0}], "signature_name": "multi"}',
        b'{"inputs": {"tag": ["a\\udfff"], "x": [1.0]}, "signature_name": "multi"}',
        b'{"signature_name": "\\ud800", "instances": [1.0]}',
    ],
)
def test_unpaired_surrogates_in_strings_are_a_400(api_server, body):
    response = post(api_server, "/v1/models/toy:predict", data=body)
    assert response.status_code in (400, 404) and response.json()["error"], response.text


def test_unpaired_surrogates_in_classify_features_are_a_400(api_server):
    response = post(api_server, "/v1/models/toy:classify", data=b'{"examples": [{"x": "\\ud800"}]}')
    assert response.status_code == 400, response.text


def test_unknown_model_status_is_a_404(api_server):
    response = get(api_server, "/v1/models/nope")
    assert response.status_code == 404
    assert "nope" in response.json()["error"]


@pytest.mark.parametrize(
    "method,path",
    [
        ("POST", "/v1/models/toy"),
        ("GET", "/v1/models/toy:predict"),
        ("POST", "/v1/models/toy:explain"),
        ("GET", "/v1/models/toy/versions/x"),
    ],
)
def test_malformed_urls_are_a_400(api_server, method, path):
    response = requests.request(method, api_server.rest_url + path, json={"instances": [1.0]}, timeout=30)
    assert response.status_code == 400
    assert "Malformed request" in response.json()["error"]


def test_body_over_the_request_limit_is_refused_with_a_4xx(api_server):
    response = post(api_server, "/v1/models/toy:predict", data=b'{"instances": [' + b"1.0," * 400_000 + b"1.0]}")
    assert response.status_code == 413
    assert "error" in response.json()


# --- monitoring ----------------------------------------------------------------------------------
def test_prometheus_metrics_count_requests_by_model_and_status(api_server):
    post(api_server, "/v1/models/toy:predict", {"instances": [1.0]})
    post(api_server, "/v1/models/toy:predict", {"instances": ["bad"]})
    response = get(api_server, "/monitoring/prometheus/metrics")
    assert response.status_code == 200
    text = response.text
    ok = [
        ln
        for ln in text.splitlines()
        if ln.startswith(":tensorflow:serving:request_count_total{")
        and 'model_name="toy"' in ln
        and 'status="OK"' in ln
        and 'entrypoint="REST"' in ln
    ]
    bad = [
        ln
        for ln in text.splitlines()
        if ln.startswith(":tensorflow:serving:request_count_total{") and 'status="INVALID_ARGUMENT"' in ln
    ]
    assert ok and float(ok[0].rsplit(" ", 1)[1]) >= 1
    assert bad
    assert ":tensorflow:serving:request_latency_bucket" in text
    assert ':tensorflow:serving:model_load_count_total{model_name="toy",status="ok"} 2.0' in text


def request_counts(server, signature: str, entrypoint: str) -> dict[str, float]:
    """The server's request_count by status for one signature and entrypoint."""
    return server.request_counts("/monitoring/prometheus/metrics", entrypoint, signature)


def test_a_request_whose_client_gave_up_is_counted_cancelled_not_ok(api_server):
    """The client's timeout closes its connection; the server drops the request and counts it CANCELLED."""
    before = request_counts(api_server, "slow", "REST")
    body = {"signature_name": "slow", "instances": [1.0]}

    def call(_):
        try:
            requests.post(api_server.rest_url + "/v1/models/toy:predict", json=body, timeout=0.01)
            return "OK"
        except requests.Timeout:
            return "timeout"

    with ThreadPoolExecutor(8) as pool:
        outcomes = list(pool.map(call, range(16)))
    assert "timeout" in outcomes
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # the server counts a request when its handler ends
        after = request_counts(api_server, "slow", "REST")
        if after.get("CANCELLED", 0) > before.get("CANCELLED", 0):
            break
        time.sleep(0.2)
    assert after.get("CANCELLED", 0) > before.get("CANCELLED", 0), (before, after)
    # A request may still finish just after its client left (counted OK then): each is counted once.
    assert sum(after.values()) - sum(before.values()) <= 16, (before, after)
