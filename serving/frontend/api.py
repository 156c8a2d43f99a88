"""The book's deployment API: GET /ping, POST /predict (multipart `image` or JSON {"image": base64})."""

from __future__ import annotations

from flask import Blueprint, jsonify, request
from werkzeug.exceptions import RequestEntityTooLarge

from serving.client import ModelServerError
from serving.frontend.images import BadImage, check_image, decode_base64
from serving.frontend.services import explain, services

api = Blueprint("api", __name__)


def failure(status: int, message: str):
    return jsonify({"success": False, "error": message}), status


@api.get("/ping")
def ping():
    return "pong", 200, {"Content-Type": "text/plain; charset=utf-8"}


def _image_from_request() -> bytes:
    if request.files:
        if "image" not in request.files:
            raise BadImage(f"no image: the multipart field must be named 'image' (got {sorted(request.files)})")
        return request.files["image"].read()
    if request.is_json or (request.data and request.data.lstrip()[:1] == b"{"):
        try:
            body = request.get_json(silent=True)  # silent: None for what is not JSON
        except RecursionError:  # nested past Python's stack: json gives up with this, not a ValueError
            raise BadImage("the body is not a JSON object: it nests too deeply") from None
        if not isinstance(body, dict):
            raise BadImage("the body is not a JSON object")
        if "image" not in body:
            raise BadImage("no image: JSON bodies need an 'image' key with base64 data")
        return decode_base64(body["image"])
    raise BadImage('no image: send multipart form data with an \'image\' file, or JSON {"image": "<base64>"}')


def _answer(read, model: str, fields):
    """The uploaded image read by `read` (a Services method): JSON with `fields(reading)`, or the error."""
    s = services()
    try:
        image = _image_from_request()
        check_image(image, s.config.max_image_bytes, s.config.max_image_pixels)
        reading = read(image)
    except RequestEntityTooLarge:
        return failure(400, f"request too large: images are limited to {s.config.max_image_bytes // 1048576} MiB")
    except BadImage as e:
        return failure(400, str(e))
    except ModelServerError as e:
        return failure(*explain(e, model))
    return jsonify(
        {
            "success": True,
            **fields(reading),
            "model": model,
            "version": reading.version,
            "transport": reading.transport,
            "latency_ms": round(reading.seconds * 1000, 2),
        }
    )


@api.post("/predict")
def predict():
    """The book's API: the captcha's text, its confidence and whether the model accepts its own answer."""
    s = services()
    return _answer(
        s.read_captcha,
        s.config.captcha_model,
        lambda r: {
            "prediction": r.text,
            "confidence": r.confidence,
            "accepted": r.accepted,
            "character_confidences": r.character_confidences,
        },
    )


@api.post("/api/mnist")
def mnist():
    """The digits page's live reading: JSON {"image": base64 or a data: URL} or multipart `image`."""
    s = services()
    return _answer(s.read_digit, s.config.mnist_model, lambda r: {"digit": r.digit, "probabilities": r.probabilities})
