"""The digits page of `make serve` over the MNIST model the quick pipeline pushed: the JSON API the
canvas calls, the upload form without JavaScript, and a real browser drawing on the canvas."""

from __future__ import annotations

import base64
import io
import os
import re

import numpy as np
import pytest
import requests
from PIL import Image

from tests.browser import click_through, needs_chromium, screenshot, start_chrome
from tests.pipelines.mnist_data import digits
from tests.serving.test_make_serve import _start_serve, _stop


@pytest.fixture(scope="module")
def served_mnist(mnist_quick_run, tmp_path_factory):
    started = _start_serve(mnist_quick_run, tmp_path_factory.mktemp("serve_mnist"))
    yield started
    _stop(started["process"])


def png_of(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def server_answer(served, image: bytes) -> dict:
    body = {"instances": [{"image_bytes": {"b64": base64.b64encode(image).decode()}}]}
    url = f"http://127.0.0.1:{served['ports']['rest']}/v1/models/mnist:predict"
    return requests.post(url, json=body, timeout=30).json()["predictions"][0]


def test_the_api_reads_a_digit_as_the_model_server_does(served_mnist):
    image = png_of(digits(1, seed=5)[0][0])
    response = requests.post(
        served_mnist["url"] + "/api/mnist",
        json={"image": "data:image/png;base64," + base64.b64encode(image).decode()},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    expected = server_answer(served_mnist, image)
    assert body["success"] is True and body["digit"] == expected["class"] and body["model"] == "mnist"
    np.testing.assert_allclose(body["probabilities"], expected["probabilities"], atol=1e-6)
    assert sum(body["probabilities"]) == pytest.approx(1.0, abs=1e-4)


@pytest.mark.parametrize(
    "payload,fragment",
    [
        ({"image": "%%%"}, "not valid base64"),
        ({"image": base64.b64encode(b"plain text").decode()}, "not an image"),
        ({"picture": "x"}, "'image' key"),
    ],
)
def test_bad_api_input_is_a_400_with_a_reason(served_mnist, payload, fragment):
    response = requests.post(served_mnist["url"] + "/api/mnist", json=payload, timeout=30)
    assert response.status_code == 400 and fragment in response.json()["error"]


def test_the_page_works_without_javascript(served_mnist):
    session = requests.Session()
    page = session.get(served_mnist["url"] + "/mnist", timeout=30)
    assert page.status_code == 200 and '<section id="draw" hidden>' in page.text  # the canvas needs JavaScript
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    image = png_of(255 - digits(1, seed=9)[0][0])  # dark on light, as a scan would be
    result = session.post(
        served_mnist["url"] + "/mnist",
        data={"csrf_token": token},
        files={"image": ("digit.png", image, "image/png")},
        timeout=30,
    )
    assert result.status_code == 200, result.text
    shown = int(re.search(r'<strong id="prediction">(\d)</strong>', result.text).group(1))
    assert shown == server_answer(served_mnist, image)["class"]
    assert result.text.count("<progress") == 20  # the ten live bars (hidden) and the ten of the result
    bad = session.post(
        served_mnist["url"] + "/mnist",
        data={"csrf_token": token},
        files={"image": ("x.png", b"nope", "image/png")},
        timeout=30,
    )
    assert bad.status_code == 400 and "not an image" in bad.text


@needs_chromium
def test_a_browser_draws_a_digit_and_reads_it_back(served_mnist):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver = start_chrome("1000,1100")
    try:
        driver.get(served_mnist["url"] + "/mnist")
        canvas = driver.find_element(By.ID, "canvas")
        assert canvas.is_displayed()
        # A "7": the bar from left to right, then the stem down to the left (offsets from the centre).
        actions = ActionChains(driver)
        actions.move_to_element_with_offset(canvas, -70, -90).click_and_hold()
        for x in range(-60, 80, 20):
            actions.move_to_element_with_offset(canvas, x, -90)
        for step in range(1, 10):
            actions.move_to_element_with_offset(canvas, 70 - step * 10, -90 + step * 20)
        actions.release().perform()
        WebDriverWait(driver, 60).until(lambda d: re.fullmatch(r"[0-9]", d.find_element(By.ID, "live-digit").text))
        # Let the last reading (after the stroke ended) land, then compare with the model server's own answer.
        WebDriverWait(driver, 30).until(
            lambda d: d.execute_script(
                "const c = document.getElementById('canvas'); const n = c.dataset.readings;"
                "return new Promise(r => setTimeout(() => r(c.dataset.readings === n), 1000));"
            )
        )
        shown = int(driver.find_element(By.ID, "live-digit").text)
        drawing = base64.b64decode(
            driver.execute_script("return document.getElementById('canvas').toDataURL('image/png')").split(",", 1)[1]
        )
        pixels = np.asarray(Image.open(io.BytesIO(drawing)).convert("L"))
        assert (pixels < 128).mean() > 0.02  # ink on the page
        expected = server_answer(served_mnist, drawing)
        assert shown == expected["class"]
        # Even the quick model (two epochs on rendered fonts) has the drawn 7 among its first three.
        assert 7 in np.argsort(expected["probabilities"])[-3:]
        bars = [float(driver.find_element(By.ID, f"bar-{d}").get_attribute("value")) for d in range(10)]
        np.testing.assert_allclose(bars, expected["probabilities"], atol=1e-3)
        assert driver.find_element(By.ID, "live-error").get_attribute("hidden") is not None
        screenshot(driver, "browser_mnist_page.png")
        driver.find_element(By.ID, "clear").click()
        assert driver.find_element(By.ID, "live-digit").text == "-"
    finally:
        driver.quit()


def _known_misreads(mnist_quick_run) -> tuple[str, list[dict]]:
    import glob
    import json

    [path] = glob.glob(os.path.join(mnist_quick_run["out"], "mnist", "Evaluator", "*", "evaluation", "metrics.json"))
    with open(path) as f:
        return os.path.dirname(path), json.load(f)["candidate"]["misread"]


def test_the_run_page_shows_metrics_charts_and_the_misread_examples(served_mnist, mnist_quick_run):
    evaluation_dir, misread = _known_misreads(mnist_quick_run)
    assert misread  # the quick run's data has mislabelled test examples
    runs = requests.get(served_mnist["url"] + "/runs", timeout=30).text
    run_link = re.search(r'href="(/runs/mnist/\d+)"', runs).group(1)
    html = requests.get(served_mnist["url"] + run_link, timeout=30).text
    assert 'id="comparison"' in html and "<td>accuracy</td>" in html
    for chart in ("slices.png", "confusion.png", "drift.png"):  # drift: the schema compares label shares
        link = re.search(rf'src="(/artifacts/[^"]+{chart})"', html).group(1)
        assert requests.get(served_mnist["url"] + link, timeout=30).content[:8] == b"\x89PNG\r\n\x1a\n"
    shown = re.findall(r'<span class="truth">(\d)</span> &rarr; <span class="answer">(\d)</span>', html)
    assert shown == [(m["truth"], m["answer"]) for m in misread]
    assert len(os.listdir(os.path.join(evaluation_dir, "misread"))) == len(misread) + 1  # the images and misread.json
    # The statistics page: the image feature's sizes and intensity, every split on one chart.
    statistics = re.search(r'href="(/artifacts/[^"]+statistics\.html)"', html).group(1)
    page = requests.get(served_mnist["url"] + statistics, timeout=30).text
    assert 'alt="image: image width, height, intensity and size per split"' in page
    assert "width 28..28, height 28..28 pixels" in page  # the IDX ExampleGen writes 28x28 PNGs
    checked = re.search(r'href="(/artifacts/[^"]+/anomalies/statistics\.html)"', html).group(1)
    page = requests.get(served_mnist["url"] + checked, timeout=30).text
    assert "<section id='drift'>" in page and "None: every split matches the schema." in page
    drift = requests.get(served_mnist["url"] + checked.replace("statistics.html", "drift.png"), timeout=30)
    assert drift.content[:8] == b"\x89PNG\r\n\x1a\n"  # the page's picture, beside it


@needs_chromium
def test_a_browser_sees_the_misread_gallery_of_a_run(served_mnist, mnist_quick_run):
    from selenium.webdriver.common.by import By

    _, misread = _known_misreads(mnist_quick_run)
    assert misread  # the quick run's data has mislabelled test examples
    driver = start_chrome("1100,1400")
    try:
        driver.get(served_mnist["url"] + "/runs")
        click_through(driver, driver.find_element(By.CSS_SELECTOR, "#pipeline-mnist h3 a"), "#gallery img")
        images = driver.find_elements(By.CSS_SELECTOR, "#gallery img")
        assert len(images) == len(misread)
        # Every picture loaded (naturalWidth 0 means a broken image) and is a 28x28 MNIST-size digit.
        sizes = [
            driver.execute_script("return [arguments[0].naturalWidth, arguments[0].naturalHeight]", i) for i in images
        ]
        assert all(size == [28, 28] for size in sizes)
        answers = [e.text for e in driver.find_elements(By.CSS_SELECTOR, "#gallery .answer")]
        assert answers == [m["answer"] for m in misread]
        charts = driver.find_elements(By.CSS_SELECTOR, "figure.chart img")
        assert charts and all(driver.execute_script("return arguments[0].naturalWidth", c) > 100 for c in charts)
        screenshot(driver, "browser_run_page.png")
        # The statistics page the run links: every split on one chart per feature, drawn offline.
        click_through(driver, driver.find_element(By.LINK_TEXT, "Data statistics (TFDV)"), "#splits figure img")
        figures = driver.find_elements(By.CSS_SELECTOR, "#splits figure img")
        assert figures and all(driver.execute_script("return arguments[0].naturalWidth", f) > 100 for f in figures)
        screenshot(driver, "browser_statistics_page.png")
        # The models page: the version history with the run that pushed it.
        driver.get(served_mnist["url"] + "/models")
        served = driver.find_elements(By.CSS_SELECTOR, "#history-mnist tr.served a")
        assert served and served[0].text.startswith("mnist.")
        screenshot(driver, "browser_models_page.png")
    finally:
        driver.quit()


def test_the_models_page_lists_each_version_with_its_run_metrics_and_whether_it_is_served(
    served_mnist, mnist_quick_run
):
    html = requests.get(served_mnist["url"] + "/models", timeout=30).text
    table = re.search(r'<table class="history" id="history-mnist">(.*?)</table>', html, re.S).group(1)
    rows = re.findall(r'<tr class="pushed-version( served)?"><td>(\d+)</td>', table)
    assert rows == [(" served", "1")]  # the quick run pushed version 1, and it is served
    assert re.search(r'href="/runs/mnist/\d+">mnist\.\d', table) and "accuracy 0." in table and " MB</td>" in table
