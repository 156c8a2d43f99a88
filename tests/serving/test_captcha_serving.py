"""The captcha model the quick pipeline pushes, served over REST and gRPC: the same answers as in process."""

from __future__ import annotations

import os

import numpy as np
import pytest
import tensorflow as tf

from serving.client import GrpcClient, ModelServerError, RestClient, read_captcha
from tests.pipelines.test_captcha_pipeline import png
from tests.serving.conftest import serving
from tests.serving.pngs import png_claiming


@pytest.fixture(scope="module")
def captcha_server(captcha_quick_run, tmp_path_factory):
    config = os.path.join(captcha_quick_run["serving"], "models.config")
    with serving(config, tmp_path_factory, "captcha_server", "--file_system_poll_wait_seconds", "0") as server:
        yield server


@pytest.fixture(scope="module")
def in_process(captcha_quick_run):
    base = os.path.join(captcha_quick_run["serving"], "captcha")
    version = max(int(v) for v in os.listdir(base) if v.isdigit())
    return version, tf.saved_model.load(os.path.join(base, str(version))).signatures["serving_default"]


@pytest.mark.parametrize("client_class,address", [(RestClient, "rest_url"), (GrpcClient, "grpc_target")])
def test_rest_and_grpc_return_what_the_saved_model_returns_in_process(
    captcha_server, in_process, client_class, address
):
    version, signature = in_process
    images = [png("1234"), png("9071"), png("5555", size=(200, 80)), png("2468", fmt="JPEG")]
    expected = signature(image_bytes=tf.constant(images))
    client = client_class(getattr(captcha_server, address))
    prediction = client.predict("captcha", {"image_bytes": images})
    assert prediction.version == version
    assert [t.decode() if isinstance(t, bytes) else t for t in prediction.outputs["text"].tolist()] == [
        t.decode() for t in expected["text"].numpy().tolist()
    ]
    np.testing.assert_allclose(
        np.asarray(prediction.outputs["probabilities"], float), expected["probabilities"].numpy(), atol=1e-6
    )
    np.testing.assert_allclose(
        np.asarray(prediction.outputs["confidence"], float), expected["confidence"].numpy(), atol=1e-6
    )


@pytest.mark.parametrize("client_class,address", [(RestClient, "rest_url"), (GrpcClient, "grpc_target")])
def test_corrupt_image_bytes_are_invalid_argument(captcha_server, client_class, address):
    client = client_class(getattr(captcha_server, address))
    with pytest.raises(ModelServerError) as raised:
        client.predict("captcha", {"image_bytes": [b"\x89PNG but not really"]})
    assert raised.value.code == "INVALID_ARGUMENT"
    assert read_captcha(client, "captcha", png("1234")).text.isdigit()  # and the server still answers


def test_read_captcha_reports_text_confidences_version_and_transport(captcha_server, in_process):
    reading = read_captcha(GrpcClient(captcha_server.grpc_target), "captcha", png("1234"))
    assert len(reading.text) == 4 and len(reading.character_confidences) == 4
    assert 0 < reading.confidence <= min(reading.character_confidences) + 1e-6
    assert reading.version == in_process[0] and reading.transport == "grpc" and reading.seconds > 0


def _rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmRSS:"))


@pytest.mark.parametrize("client_class,address", [(RestClient, "rest_url"), (GrpcClient, "grpc_target")])
def test_an_image_claiming_too_many_pixels_is_refused_before_it_is_decoded(captcha_server, client_class, address):
    """The exported graph reads the header first: a 16000x16000 PNG (~250 KB) never becomes 256 MB of pixels."""
    bomb = png_claiming(16000, 16000)
    assert len(bomb) < 400_000
    client = client_class(getattr(captcha_server, address))
    before = _rss_bytes(captcha_server.process.pid)
    for _ in range(4):
        with pytest.raises(ModelServerError) as raised:
            client.predict("captcha", {"image_bytes": [bomb]})
        assert raised.value.code == "INVALID_ARGUMENT"
        assert "too large" in str(raised.value)
    assert _rss_bytes(captcha_server.process.pid) - before < 64 << 20
    assert read_captcha(client, "captcha", png("1234")).text.isdigit()


def test_an_empty_batch_is_answered_with_no_rows_in_process_and_over_grpc(captcha_server, in_process):
    """The exported graph failed on zero images (oneDNN's convolutions), here and on TF Serving."""
    _, signature = in_process
    outputs = signature(image_bytes=tf.constant([], tf.string))
    assert {name: tuple(value.shape) for name, value in outputs.items()} == {
        "text": (0,),
        "probabilities": (0, 4, 10),
        "confidence": (0,),
        "accepted": (0,),
    }
    prediction = GrpcClient(captcha_server.grpc_target).predict("captcha", {"image_bytes": np.array([], object)})
    assert np.asarray(prediction.outputs["text"]).size == 0
