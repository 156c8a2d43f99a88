"""The pages people see: the captcha demo, house prices, the served models and the pipeline runs."""

from __future__ import annotations

import math
import os
import time

from flask import Blueprint, abort, render_template, request, send_from_directory
from werkzeug.exceptions import RequestEntityTooLarge

from serving.client import ModelServerError
from serving.frontend import runs as runs_view
from serving.frontend.images import BadImage, check_image, data_url, random_captcha
from serving.frontend.services import explain, services

pages = Blueprint("pages", __name__)


# --- captcha demo ----------------------------------------------------------------------------------
@pages.get("/")
def captcha_page():
    return render_template("captcha.html", result=None, error=None)


def _read_upload(template: str, read, model: str, make_image=None):
    """A form's image (uploaded, or made by `make_image` -> (truth, bytes)) read by `read` (a Services
    method): (image, format, truth, reading), or the page with the error and its status."""
    s = services()
    truth = None
    try:
        if make_image is not None:
            truth, image = make_image()
            fmt = "PNG"
        else:
            upload = request.files.get("image")
            image = upload.read() if upload else b""
            fmt = check_image(image, s.config.max_image_bytes, s.config.max_image_pixels)
        return (image, fmt, truth, read(image)), None
    except RequestEntityTooLarge:
        limit = s.config.max_image_bytes // 1048576
        return None, (
            render_template(template, result=None, error=f"The upload is too large: the limit is {limit} MiB."),
            400,
        )
    except BadImage as e:
        return None, (render_template(template, result=None, error=str(e)), 400)
    except ModelServerError as e:
        status, message = explain(e, model)
        return None, (render_template(template, result=None, error=message), status)


def _served(reading, model: str) -> dict:
    return {
        "model": model,
        "version": reading.version,
        "transport": reading.transport,
        "latency_ms": reading.seconds * 1000,
    }


@pages.post("/")
def captcha_read():
    s = services()
    generate = None
    if request.form.get("action") == "generate":
        generate = lambda: random_captcha(s.config.captcha_charset, s.config.captcha_length)
    done, failed = _read_upload("captcha.html", s.read_captcha, s.config.captcha_model, generate)
    if failed:
        return failed
    image, fmt, truth, reading = done
    result = {
        "image": data_url(image, fmt),
        "truth": truth,
        "text": reading.text,
        "confidence": reading.confidence,
        "unsure": reading.accepted is False,
        "characters": list(zip(reading.text, reading.character_confidences)),
        **_served(reading, s.config.captcha_model),
    }
    return render_template("captcha.html", result=result, error=None)


# --- house prices ----------------------------------------------------------------------------------
def _house_inputs(form) -> tuple[dict, dict[str, str]]:
    values, problems = {}, {}
    area_text, bedrooms_text = form.get("area", "").strip(), form.get("bedrooms", "").strip()
    if not area_text:
        problems["area"] = "Enter the area in square feet."
    else:
        try:
            area = float(area_text)
            if not math.isfinite(area) or area <= 0:
                problems["area"] = "The area must be a positive number of square feet."
            else:
                values["area"] = area
        except ValueError:
            problems["area"] = f"'{area_text}' is not a number."
    if not bedrooms_text:
        problems["bedrooms"] = "Enter the number of bedrooms."
    else:
        try:
            bedrooms = int(bedrooms_text)
            if not 1 <= bedrooms <= 20:
                problems["bedrooms"] = "Bedrooms must be a whole number from 1 to 20."
            else:
                values["bedrooms"] = bedrooms
        except ValueError:
            problems["bedrooms"] = f"'{bedrooms_text}' is not a whole number."
    return values, problems


@pages.route("/house-price", methods=["GET", "POST"])
def house_price():
    s = services()
    if request.method == "GET":
        return render_template("house_price.html", form={}, problems={}, result=None, error=None)
    values, problems = _house_inputs(request.form)
    if problems:
        return render_template("house_price.html", form=request.form, problems=problems, result=None, error=None), 400
    try:
        prediction = s.client.predict(
            s.config.house_price_model, {"area": [values["area"]], "bedrooms": [values["bedrooms"]]}
        )
    except ModelServerError as e:
        status, message = explain(e, s.config.house_price_model)
        return render_template("house_price.html", form=request.form, problems={}, result=None, error=message), status
    price = float(next(iter(prediction.outputs.values())).reshape(-1)[0])
    result = {
        "price": price,
        "version": prediction.version,
        "transport": prediction.transport,
        "latency_ms": prediction.seconds * 1000,
        "model": s.config.house_price_model,
    }
    return render_template("house_price.html", form=request.form, problems={}, result=result, error=None)


# --- handwritten digits (MNIST) -------------------------------------------------------------------
@pages.get("/mnist")
def mnist_page():
    return render_template("mnist.html", result=None, error=None)


@pages.post("/mnist")
def mnist_read():
    """The page without JavaScript: an uploaded image of a digit, read and shown with its probabilities."""
    s = services()
    done, failed = _read_upload("mnist.html", s.read_digit, s.config.mnist_model)
    if failed:
        return failed
    image, fmt, _, reading = done
    result = {
        "image": data_url(image, fmt),
        "digit": reading.digit,
        "probabilities": list(enumerate(reading.probabilities)),
        **_served(reading, s.config.mnist_model),
    }
    return render_template("mnist.html", result=result, error=None)


# --- served models ---------------------------------------------------------------------------------
@pages.get("/models")
def models():
    s = services()
    configured = runs_view.configured_models(s.config)
    rows, error = [], None
    for name, labels in configured.items():
        try:
            statuses = s.client.status(name)
            problem = None
        except ModelServerError as e:
            statuses, problem = [], ("not loaded" if e.code == "NOT_FOUND" else explain(e, name)[1])
            if e.code == "UNAVAILABLE":
                error = explain(e, name)[1]
        by_version = {}
        for label, version in labels.items():
            by_version.setdefault(version, []).append(label)
        rows.append(
            {
                "name": name,
                "problem": problem,
                "versions": [
                    {
                        "version": st.version,
                        "state": st.state,
                        "error": st.error_message,
                        "labels": sorted(by_version.get(st.version, [])),
                    }
                    for st in statuses
                ],
            }
        )
    served = {row["name"]: [v["version"] for v in row["versions"] if v["state"] == "AVAILABLE"] for row in rows}
    history = runs_view.model_history(s.config, served)
    page = render_template(
        "models.html", rows=rows, history=history, error=error, config_path=s.config.models_config, now=time.time()
    )
    return page, (503 if error else 200)


# --- pipeline runs ---------------------------------------------------------------------------------
@pages.get("/runs")
def runs():
    s = services()
    try:
        found, error = runs_view.latest_runs(s.config.metadata_path), None
    except runs_view.RunsUnavailable as e:
        found, error = {}, str(e)
    return render_template("runs.html", pipelines=found, metadata_path=s.config.metadata_path, error=error)


@pages.get("/runs/<pipeline>/compare")
def compare(pipeline: str):
    """Runs side by side (?run=ID&run=ID...): parameters that differ, metrics, curves overlaid."""
    s = services()
    wanted = request.args.getlist("run")
    if len(wanted) < 2:
        abort(400, description="pick two or more runs to compare (?run=ID&run=ID)")
    try:
        found = runs_view.compare(s.config.metadata_path, pipeline, wanted)
    except (runs_view.RunsUnavailable, ValueError) as e:
        abort(404, description=str(e))
    return render_template("compare.html", pipeline=pipeline, **found)


@pages.get("/runs/<pipeline>/<int:run_id>")
def run(pipeline: str, run_id: int):
    s = services()
    try:
        found = runs_view.run_details(s.config.metadata_path, pipeline, run_id, s.config.runs_dir)
    except runs_view.RunsUnavailable as e:
        abort(404, description=str(e))
    if found is None:
        abort(404, description=f"no run {run_id} of pipeline {pipeline!r} in {s.config.metadata_path}")
    return render_template("run.html", run=found, pipeline=pipeline)


@pages.get("/artifacts/<path:path>")
def artifact_file(path: str):
    """Files inside the runs directory only (statistics.html, curves.png, metrics.json, anomalies.json)."""
    root = os.path.abspath(services().config.runs_dir)
    if not path.endswith((".html", ".png", ".json", ".pbtxt")):
        abort(404)
    return send_from_directory(root, path)
