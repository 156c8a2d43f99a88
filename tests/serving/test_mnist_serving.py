"""The MNIST model the quick pipeline pushes, served over REST and gRPC: its three signatures,
called the way TensorFlow Serving's own MNIST clients call them (tensorflow_serving.apis stubs),
answer what the SavedModel answers in process."""

from __future__ import annotations

import base64
import io
import os

import grpc
import numpy as np
import pytest
import requests
import tensorflow as tf
from PIL import Image
from tensorflow_serving.apis import classification_pb2, predict_pb2

from tests.pipelines.mnist_data import digits
from tests.serving.conftest import prediction_stub, serving
from tests.serving.pngs import png_claiming

ANSWER_ATOL = 0.05  # how far a re-encoded image's probabilities may move from its 784 floats' answer


@pytest.fixture(scope="module")
def mnist_server(mnist_quick_run, tmp_path_factory):
    config = os.path.join(mnist_quick_run["serving"], "models.config")
    with serving(config, tmp_path_factory, "mnist_server", "--file_system_poll_wait_seconds", "0") as server:
        yield server


@pytest.fixture(scope="module")
def stub(mnist_server):
    with prediction_stub(mnist_server) as stub:
        yield stub


@pytest.fixture(scope="module")
def signatures(mnist_quick_run):
    return tf.saved_model.load(os.path.join(mnist_quick_run["serving"], "mnist", "1")).signatures


@pytest.fixture(scope="module")
def images():
    pixels, labels = digits(6, seed=11)
    return pixels, labels


@pytest.fixture(scope="module")
def clear_images(signatures):
    """Three digits the model does not find a near-tie, for tests that compare argmaxes.

    The quick run trains for seconds, so some digits get two scores within a few hundredths of each
    other; a lossless re-encoding, which may move each probability by up to the 0.05 the tests allow,
    can then flip the answer without anything being wrong. A margin above twice that tolerance makes
    the class a fact of the image. Too few such digits means the quick model cannot read digits:
    a failure worth seeing."""
    pixels, _ = digits(40, seed=11)
    margins = []
    for image in pixels:
        top_two = np.sort(reference_scores(signatures, image))[-2:]
        margins.append(float(top_two[1] - top_two[0]))
    order = np.argsort(margins)[::-1][:3]
    assert margins[order[-1]] > 2 * ANSWER_ATOL, f"the quick MNIST model is unsure of most digits: {sorted(margins)}"
    return pixels[order]


def reference_scores(signatures, pixels: np.ndarray) -> np.ndarray:
    """The in-process answer of predict_images to one uint8 [28, 28] digit."""
    flat = tf.constant(pixels.reshape(1, 784) / 255.0, tf.float32)
    return signatures["predict_images"](images=flat)["scores"].numpy()[0]


def encode(
    pixels: np.ndarray, fmt: str = "PNG", invert: bool = False, size: int | None = None, rgb: bool = False
) -> bytes:
    image = Image.fromarray(255 - pixels if invert else pixels)
    if size:
        image = image.resize((size, size), Image.BILINEAR)
    if rgb:
        image = image.convert("RGB")
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


def test_mnist_client_style_predict_images_over_grpc(stub, signatures, images):
    """What tensorflow_serving/example/mnist_client.py sends: one [1, 784] float image per request
    to signature predict_images, reading outputs['scores'].float_val."""
    pixels, _ = images
    for image in pixels:
        flat = (image.astype(np.float32) / 255.0).reshape(1, 784)
        request = predict_pb2.PredictRequest()
        request.model_spec.name = "mnist"
        request.model_spec.signature_name = "predict_images"
        request.inputs["images"].CopyFrom(tf.make_tensor_proto(flat[0], shape=[1, flat[0].size]))
        result_future = stub.Predict.future(request, 5.0)
        scores = np.array(result_future.result().outputs["scores"].float_val)
        assert scores.shape == (10,) and scores.sum() == pytest.approx(1.0, abs=1e-4)
        expected = signatures["predict_images"](images=tf.constant(flat))["scores"].numpy()[0]
        np.testing.assert_allclose(scores, expected, atol=1e-5)


def test_predict_images_over_rest_row_and_columnar(mnist_server, signatures, images):
    flat = (images[0].astype(np.float32) / 255.0).reshape(-1, 784)
    expected = signatures["predict_images"](images=tf.constant(flat))["scores"].numpy()
    url = f"{mnist_server.rest_url}/v1/models/mnist:predict"
    rows = requests.post(url, json={"signature_name": "predict_images", "instances": flat.tolist()}, timeout=30).json()
    np.testing.assert_allclose(rows["predictions"], expected, atol=1e-5)
    body = {"signature_name": "predict_images", "inputs": {"images": flat.tolist()}}
    columns = requests.post(url, json=body, timeout=30).json()
    np.testing.assert_allclose(columns["outputs"], expected, atol=1e-5)


def test_serving_default_takes_any_image_and_either_polarity(mnist_server, stub, signatures, clear_images):
    url = f"{mnist_server.rest_url}/v1/models/mnist:predict"
    for image in clear_images:
        reference = reference_scores(signatures, image)
        for variant, lossless in (
            (encode(image), True),
            (encode(image, invert=True), True),
            (encode(image, "BMP"), True),
            (encode(image, "GIF"), True),
            (encode(image, invert=True, size=140, rgb=True), False),
        ):
            body = {"instances": [{"image_bytes": {"b64": base64.b64encode(variant).decode()}}]}
            response = requests.post(url, json=body, timeout=30)
            assert response.status_code == 200, response.text
            answer = response.json()["predictions"][0]
            assert answer["class"] == int(np.argmax(answer["probabilities"]))
            # The server answers what the signature answers in process for the same bytes.
            in_process = signatures["serving_default"](image_bytes=tf.constant([variant]))["probabilities"].numpy()[0]
            np.testing.assert_allclose(answer["probabilities"], in_process, atol=1e-5)
            if lossless:  # the same digit framed as MNIST is: the answer of its 784 floats
                np.testing.assert_allclose(answer["probabilities"], reference, atol=ANSWER_ATOL)
            # Scaled up 5x and back down by the signature, the pixels move (bilinear both ways) and the quick
            # model's probabilities with them, by 0.06 in one CI run; the digit the model reads does not.
            assert answer["class"] == int(np.argmax(reference))
        request = predict_pb2.PredictRequest()
        request.model_spec.name = "mnist"
        request.inputs["image_bytes"].CopyFrom(tf.make_tensor_proto([encode(image, "JPEG", size=56)]))
        response = stub.Predict(request, timeout=30)
        assert tf.make_ndarray(response.outputs["probabilities"]).shape == (1, 10)


def test_classify_takes_image_bytes_or_the_tutorials_x_feature(stub, signatures, clear_images):
    pixels = clear_images
    request = classification_pb2.ClassificationRequest()
    request.model_spec.name, request.model_spec.signature_name = "mnist", "classify"
    for image in pixels[:2]:
        request.input.example_list.examples.add().features.feature["image"].bytes_list.value.append(encode(image))
        request.input.example_list.examples.add().features.feature["x"].float_list.value.extend(
            (image.astype(np.float32) / 255.0).reshape(-1).tolist()
        )
    result = stub.Classify(request, timeout=30).result
    assert len(result.classifications) == 4
    for i, row in enumerate(result.classifications):
        labels, scores = [c.label for c in row.classes], [c.score for c in row.classes]
        assert sorted(labels) == list("0123456789") and scores == sorted(scores, reverse=True)
        expected = reference_scores(signatures, pixels[i // 2])
        assert labels[0] == str(int(np.argmax(expected)))
        assert scores[0] == pytest.approx(float(expected.max()), abs=0.02)


def test_bad_inputs_are_invalid_argument_not_a_crash(mnist_server, stub):
    url = f"{mnist_server.rest_url}/v1/models/mnist:predict"
    wrong_width = requests.post(url, json={"signature_name": "predict_images", "instances": [[0.5] * 783]}, timeout=30)
    assert wrong_width.status_code == 400 and "784" in wrong_width.json()["error"]
    for data in (b"not an image", png_claiming(16000, 16000)):
        request = predict_pb2.PredictRequest()
        request.model_spec.name = "mnist"
        request.inputs["image_bytes"].CopyFrom(tf.make_tensor_proto([data]))
        with pytest.raises(grpc.RpcError) as raised:
            stub.Predict(request, timeout=30)
        assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    blank = requests.post(url, json={"signature_name": "predict_images", "instances": [[0.0] * 784]}, timeout=30)
    assert blank.status_code == 200 and len(blank.json()["predictions"][0]) == 10  # a blank page still answers


def test_every_signature_answers_an_empty_batch_with_no_rows(signatures):
    """The CNN failed on zero images (oneDNN's convolutions), here and on TF Serving."""
    assert signatures["serving_default"](image_bytes=tf.constant([], tf.string))["probabilities"].shape[0] == 0
    assert signatures["predict_images"](images=tf.zeros([0, 784]))["scores"].shape[0] == 0
    assert signatures["classify"](inputs=tf.constant([], tf.string))["scores"].shape[0] == 0
