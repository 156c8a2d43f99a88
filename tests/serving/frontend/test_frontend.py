"""The Flask demo frontend: every route and bad input through Flask's test client, against a real model server."""

from __future__ import annotations

import base64
import io
import os
import re

import pytest
from google.protobuf import text_format
from PIL import Image
from tensorflow_serving.config import model_server_config_pb2

from serving.frontend import create_app
from serving.frontend.config import FrontendConfig
from serving.model_server.process import ServerProcess, free_port, wait_for
from tests.pipelines.test_captcha_pipeline import png
from tests.serving.toy_model import write_house_price_model, write_toy_model


@pytest.fixture(scope="module")
def stack(captcha_quick_run, tmp_path_factory):
    """A model server with the quick run's captcha model, a house-price model and a toy model that gets new versions."""
    root = tmp_path_factory.mktemp("frontend")
    write_house_price_model(str(root / "house_price"))
    write_toy_model(str(root / "toy"), 1)
    config = model_server_config_pb2.ModelServerConfig()
    models = config.model_config_list.config
    models.add(
        name="captcha", base_path=os.path.join(captcha_quick_run["serving"], "captcha"), model_platform="tensorflow"
    )
    models.add(name="house_price", base_path=str(root / "house_price"), model_platform="tensorflow")
    toy = models.add(name="toy", base_path=str(root / "toy"), model_platform="tensorflow")
    toy.model_version_policy.all.SetInParent()
    toy.version_labels["stable"] = 1
    config_path = str(root / "models.config")
    with open(config_path, "w") as f:
        f.write(text_format.MessageToString(config))
    with ServerProcess(
        "--model_config_file", config_path, "--file_system_poll_wait_seconds", "0.5", log_path=str(root / "server.log")
    ) as server:
        yield {"server": server, "config": config_path, "root": root, "runs": captcha_quick_run["out"]}


def make_client(stack, transport="rest"):
    config = FrontendConfig(
        rest_url=stack["server"].rest_url,
        grpc_target=stack["server"].grpc_target,
        transport=transport,
        models_config=stack["config"],
        runs_dir=stack["runs"],
    )
    return create_app(config).test_client()


def submit(client, path: str, data: dict):
    """POSTs a form as a browser does: with the CSRF token of the page it was loaded from."""
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get(path).data.decode()).group(1)
    return client.post(path, data={**data, "csrf_token": token})


@pytest.fixture(scope="module")
def web(stack):
    return make_client(stack)


@pytest.fixture
def web_without_server(tmp_path):
    config = FrontendConfig(
        rest_url=f"http://127.0.0.1:{free_port()}",
        timeout_seconds=2,
        models_config=str(tmp_path / "none.config"),
        runs_dir=str(tmp_path),
    )
    return create_app(config).test_client()


# --- API ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("transport", ["rest", "grpc"])
def test_predict_with_a_multipart_image(stack, transport):
    response = make_client(stack, transport).post("/predict", data={"image": (io.BytesIO(png("1234")), "c.png")})
    body = response.get_json()
    assert response.status_code == 200, body
    assert body["success"] is True
    assert re.fullmatch(r"[0-9]{4}", body["prediction"])
    assert body["model"] == "captcha" and body["version"] == 1 and body["transport"] == transport
    assert len(body["character_confidences"]) == 4 and body["latency_ms"] > 0
    assert body["accepted"] is False  # over both protocols: the quick model accepts nothing it reads


def test_predict_with_json_base64_and_a_jpeg(web):
    image = Image.open(io.BytesIO(png("9071"))).convert("RGB")
    out = io.BytesIO()
    image.save(out, format="JPEG")
    response = web.post("/predict", json={"image": base64.b64encode(out.getvalue()).decode()})
    assert response.status_code == 200
    assert response.get_json()["success"] is True


def test_model_server_down_is_a_503_with_a_clear_message(web_without_server):
    response = web_without_server.post("/predict", data={"image": (io.BytesIO(png("1234")), "c.png")})
    assert response.status_code == 503
    body = response.get_json()
    assert body["success"] is False and "model server is unavailable" in body["error"]
    page = submit(web_without_server, "/", {"action": "generate"})
    assert page.status_code == 503
    assert b"model server is unavailable" in page.data and b"Traceback" not in page.data


# --- captcha page ------------------------------------------------------------------------------------
def test_captcha_page_works_without_javascript(web):
    page = web.get("/")
    assert page.status_code == 200
    assert b'enctype="multipart/form-data"' in page.data and b"<script" not in page.data


def test_generated_captcha_is_shown_with_its_reading(web):
    page = submit(web, "/", {"action": "generate"})
    assert page.status_code == 200
    html = page.data.decode()
    assert 'src="data:image/png;base64,' in html
    assert re.search(r'id="prediction">[0-9]{4}<', html) and re.search(r'id="truth">[0-9]{4}<', html)
    assert 'id="version">1<' in html and 'id="transport">rest<' in html
    assert html.count("<tr><td>") == 4  # one confidence row per character
    assert 'id="unsure"' in html  # the quick model accepts nothing it reads


def test_uploaded_captcha_is_read(web):
    page = submit(web, "/", {"action": "upload", "image": (io.BytesIO(png("5555")), "c.png")})
    assert page.status_code == 200
    assert re.search(r'id="prediction">[0-9]{4}<', page.data.decode())


# --- house prices --------------------------------------------------------------------------------------
def test_house_price_form_returns_the_models_price(web):
    page = submit(web, "/house-price", {"area": "2000", "bedrooms": "3"})
    assert page.status_code == 200
    assert 'id="price">215,000<' in page.data.decode()  # 100 * 2000 + 5000 * 3


# --- models page -----------------------------------------------------------------------------------------
def test_models_page_lists_versions_states_and_labels_and_refreshes(web, stack):
    html = web.get("/models").data.decode()
    assert 'http-equiv="refresh"' in html
    assert 'id="model-captcha"' in html and 'id="model-house_price"' in html
    assert '<tr class="version"><td>1</td><td>AVAILABLE</td><td>stable</td>' in html
    write_toy_model(str(stack["root"] / "toy"), 2)
    wait_for(lambda: "<td>2</td><td>AVAILABLE</td>" in web.get("/models").data.decode(), timeout=30)


# --- pipeline runs page -----------------------------------------------------------------------------------
def test_runs_page_shows_components_status_duration_and_cache(web):
    html = web.get("/runs").data.decode()
    assert 'id="pipeline-captcha"' in html
    for component in ("CaptchaExampleGen", "StatisticsGen", "Trainer", "Evaluator", "Pusher"):
        assert f"<td>{component}</td>" in html


def test_run_page_links_statistics_curves_metrics_and_blessing(web):
    run_link = re.search(r'href="(/runs/captcha/\d+)"', web.get("/runs").data.decode()).group(1)
    html = web.get(run_link).data.decode()
    assert 'id="blessing"' in html and 'id="metrics"' in html and "full_string_accuracy" in html
    curves = re.search(r'href="(/artifacts/[^"]+curves\.png)"', html).group(1)
    reliability = re.search(r'href="(/artifacts/[^"]+reliability\.png)"', html).group(1)
    assert web.get(reliability).data[:8] == b"\x89PNG\r\n\x1a\n"
    statistics = re.search(r'href="(/artifacts/[^"]+statistics\.html)"', html).group(1)
    assert web.get(curves).data[:8] == b"\x89PNG\r\n\x1a\n"
    assert web.get(statistics).status_code == 200


@pytest.mark.parametrize(
    "path",
    [
        "/artifacts/../../etc/passwd",
        "/artifacts/%2e%2e/%2e%2e/etc/passwd",
        "/artifacts/..%2f..%2fetc%2fpasswd.json",
        "/artifacts/%2fetc%2fpasswd.json",
        "/artifacts//etc/hostname.json",
        "/artifacts/metadata.sqlite",
        "/artifacts/..%5c..%5cetc%5cpasswd.html",
        "/artifacts/captcha/%00.json",
        "/static/../serving/frontend/__init__.py",
        "/static/%2e%2e/__init__.py",
        "/runs/captcha/999999",
        "/runs/..%2f..%2fetc/1",
    ],
)
def test_file_routes_refuse_paths_outside_their_folder(web, path):
    response = web.get(path, follow_redirects=True)  # Werkzeug merges "//" with a redirect inside the route
    assert response.status_code in (400, 404), path
    assert b"root:" not in response.data and b"import" not in response.data


def test_a_file_outside_the_runs_folder_is_not_served_by_absolute_or_relative_paths(web, stack):
    outside = stack["root"] / "secret.json"
    outside.write_text('{"secret": 1}')
    for path in (f"/artifacts/{outside}", "/artifacts/" + os.path.relpath(outside, stack["runs"])):
        response = web.get(path, follow_redirects=True)
        assert response.status_code == 404 and b"secret" not in response.data


# --- security headers and CSRF ---------------------------------------------------------------------
def test_artifacts_are_sandboxed(web):
    run_link = re.search(r'href="(/runs/captcha/\d+)"', web.get("/runs").data.decode()).group(1)
    statistics = re.search(r'href="(/artifacts/[^"]+statistics\.html)"', web.get(run_link).data.decode()).group(1)
    policy = web.get(statistics).headers["Content-Security-Policy"]
    assert "sandbox" in policy and "default-src 'none'" in policy


@pytest.mark.parametrize(
    "path,data", [("/", {"action": "generate"}), ("/house-price", {"area": "2000", "bedrooms": "3"})]
)
def test_forms_without_this_sites_token_are_refused(web, stack, path, data):
    for token in (None, "forged"):
        page = web.post(path, data=data if token is None else {**data, "csrf_token": token})
        assert page.status_code == 400 and b"did not come from this site" in page.data
    other_browser = make_client(stack)  # a token from one session is worthless in another
    token = re.search(r'name="csrf_token" value="([^"]+)"', web.get(path).data.decode()).group(1)
    assert other_browser.post(path, data={**data, "csrf_token": token}).status_code == 400
    assert submit(web, path, data).status_code == 200


def test_the_predict_api_needs_no_token(web):
    response = web.post("/predict", data={"image": (io.BytesIO(png("1234")), "c.png")})
    assert response.status_code == 200 and response.get_json()["success"] is True


def test_runs_page_without_a_store_says_to_run_the_pipeline(web_without_server):
    assert b"make pipeline" in web_without_server.get("/runs").data
