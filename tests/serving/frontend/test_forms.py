"""The frontend's forms, API input checks and headers with a stand-in for the model server
(`create_app(config, client=...)`): what is tested here is the frontend's own handling, and every
refused input must be refused before anything is sent to the server, which the stand-in records.
The same routes against a real model server: test_frontend.py."""

from __future__ import annotations

import base64
import io
import os
import re

import pytest
from PIL import Image

from serving.client import ServerUnavailable
from serving.frontend import create_app
from serving.frontend.config import FrontendConfig
from tests.serving.pngs import png_claiming


class RecordingClient:
    """Answers nothing: records each call and says the server is unavailable."""

    transport = "rest"

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple]] = []

    def __getattr__(self, name: str):
        if name.startswith("_"):
            raise AttributeError(name)

        def call(*args, **kwargs):
            self.calls.append((name, args))
            raise ServerUnavailable("the stand-in model server answers nothing")

        return call


@pytest.fixture
def fake(tmp_path):
    client = RecordingClient()
    config = FrontendConfig(models_config=str(tmp_path / "models.config"), runs_dir=str(tmp_path))
    return client, create_app(config, client=client).test_client()


@pytest.fixture
def web(fake):
    """The test client; afterwards, nothing may have reached the model server."""
    client, web = fake
    yield web
    assert client.calls == [], f"refused input reached the model server: {client.calls}"


def submit(client, path: str, data: dict):
    """POSTs a form as a browser does: with the CSRF token of the page it was loaded from."""
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get(path).data.decode()).group(1)
    return client.post(path, data={**data, "csrf_token": token})


def test_ping_answers_pong(web):
    response = web.get("/ping")
    assert response.status_code == 200 and response.data == b"pong"


@pytest.mark.parametrize(
    "kwargs,fragment",
    [  # each a function: a BytesIO is used up by the first test that reads it, and two routes get these
        (lambda: {}, "no image"),
        (lambda: {"data": {"file": (io.BytesIO(b"x"), "c.png")}}, "'image'"),
        (lambda: {"data": {"image": (io.BytesIO(b"not an image at all"), "c.png")}}, "not an image"),
        (lambda: {"data": {"image": (io.BytesIO(b""), "c.png")}}, "no image"),
        (lambda: {"json": {"image": "@@not base64@@"}}, "base64"),
        (lambda: {"json": {"picture": "AAAA"}}, "'image'"),
        (lambda: {"json": {"image": 12}}, "base64"),
        (lambda: {"json": {"image": base64.b64encode(b"GIF89a-but-broken").decode()}}, "not an image"),
        (lambda: {"data": "{not json", "content_type": "application/json"}, "JSON"),
        # Python's json gives up on this with a RecursionError, which Flask's silent parse let through: a 500
        (
            lambda: {"data": '{"image":' + "[" * 100_000 + "]" * 100_000 + "}", "content_type": "application/json"},
            "deeply",
        ),
        (lambda: {"data": "[" * 100_000 + "]" * 100_000, "content_type": "application/json"}, "deeply"),
    ],
)
@pytest.mark.parametrize("route", ["/predict", "/api/mnist"])
def test_bad_predict_input_is_a_400_with_success_false(web, route, kwargs, fragment):
    response = web.post(route, **kwargs())
    body = response.get_json()
    assert response.status_code == 400, body
    assert body["success"] is False and fragment in body["error"]


def test_image_over_2_mib_is_a_400(web):
    noise = Image.frombytes("RGB", (1100, 1100), os.urandom(1100 * 1100 * 3))
    out = io.BytesIO()
    noise.save(out, format="PNG")
    assert len(out.getvalue()) > 2 * 1024 * 1024
    response = web.post("/predict", data={"image": (io.BytesIO(out.getvalue()), "big.png")})
    assert response.status_code == 400
    assert "MiB" in response.get_json()["error"]


@pytest.mark.parametrize(
    "data,fragment",
    [
        ({"action": "upload"}, b"no image"),
        ({"action": "upload", "image": (io.BytesIO(b"hello"), "x.png")}, b"not an image"),
    ],
)
def test_captcha_page_bad_upload_says_why(web, data, fragment):
    page = submit(web, "/", data)
    assert page.status_code == 400 and fragment in page.data


@pytest.mark.parametrize("width, height", [(16000, 16000), (5000, 5000)])
def test_an_image_claiming_too_many_pixels_is_refused_before_the_server(web, width, height):
    """A 1 KB PNG claiming 16000x16000: Pillow's own refusal was a 500 on both routes; one under
    Pillow's limit but over the model's 20 megapixels is refused here too, with its size."""
    bomb = png_claiming(width, height, pixels=False)
    reason = "pixels; the limit is 20,000,000" if width > 10000 else f"image is {width}x{height} pixels"
    response = web.post("/predict", data={"image": (io.BytesIO(bomb), "bomb.png")})
    assert response.status_code == 400 and reason in response.get_json()["error"]
    response = web.post("/predict", json={"image": base64.b64encode(bomb).decode()})
    assert response.status_code == 400 and reason in response.get_json()["error"]
    page = submit(web, "/", {"action": "upload", "image": (io.BytesIO(bomb), "bomb.png")})
    assert page.status_code == 400 and reason in page.data.decode()


@pytest.mark.parametrize(
    "form,fragment",
    [
        ({"area": "", "bedrooms": "3"}, "Enter the area"),
        ({"area": "-5", "bedrooms": "3"}, "positive"),
        ({"area": "big", "bedrooms": "3"}, "not a number"),
        ({"area": "nan", "bedrooms": "3"}, "positive"),
        ({"area": "1000", "bedrooms": ""}, "Enter the number of bedrooms"),
        ({"area": "1000", "bedrooms": "2.5"}, "not a whole number"),
        ({"area": "1000", "bedrooms": "0"}, "1 to 20"),
    ],
)
def test_house_price_inputs_are_validated(web, form, fragment):
    page = submit(web, "/house-price", form)
    assert page.status_code == 400
    assert fragment in page.data.decode()


@pytest.mark.parametrize("path", ["/", "/house-price", "/mnist", "/runs", "/nope"])
def test_pages_send_csp_nosniff_and_refuse_framing(web, path):
    headers = web.get(path).headers
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
    assert "default-src 'self'" in headers["Content-Security-Policy"] and headers["X-Frame-Options"] == "DENY"


def test_a_good_request_does_reach_the_server_and_its_absence_is_a_503(fake):
    """The stand-in is asked once a request passes the checks (so the tests above can fail)."""
    client, web = fake
    buffer = io.BytesIO()
    Image.new("L", (28, 28), 0).save(buffer, "PNG")
    response = web.post("/predict", data={"image": (io.BytesIO(buffer.getvalue()), "c.png")})
    assert response.status_code == 503 and "unavailable" in response.get_json()["error"].lower()
    assert [name for name, _ in client.calls] and client.calls[0][0] in ("predict", "status", "latest_version")


def test_the_models_page_says_the_server_is_unavailable(fake):
    client, web = fake
    with open(web.application.extensions["frontend"].config.models_config, "w") as f:
        f.write('model_config_list { config { name: "captcha" base_path: "/m/captcha" model_platform: "tensorflow" } }')
    page = web.get("/models")
    assert page.status_code in (200, 503) and b"captcha" in page.data
    assert ("status", ("captcha",)) in client.calls


@pytest.mark.parametrize("store", ["garbage", "directory"])
def test_a_metadata_store_that_is_not_sqlite_is_named_not_a_500(fake, tmp_path, store):
    """A runs folder whose metadata.sqlite is another file or a directory: the runs pages said 500."""
    _client, web = fake
    path = tmp_path / "metadata.sqlite"
    if store == "garbage":
        path.write_bytes(b"PK\x03\x04 a zip, not a database" * 100)
    else:
        path.mkdir()
    reason = "it is not a SQLite database" if store == "garbage" else "it is a directory"
    page = web.get("/runs")
    assert page.status_code == 200 and reason in page.data.decode()
    assert "--output-dir" not in page.data.decode()  # the CLI's remedy, not one the page offers
    detail = web.get("/runs/captcha/1")
    assert detail.status_code == 404 and reason in detail.data.decode()
