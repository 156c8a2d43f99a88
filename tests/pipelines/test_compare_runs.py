"""Comparing past runs (issue #17): `pipelines compare-runs` and the runs page's compare view show the
parameters that differ, the metrics side by side and the curves overlaid."""

from __future__ import annotations

import functools
import json
import re
import shutil

import pytest

from pipelines.compare_runs import RunView, _flatten, differing_parameters
from tests.browser import click_through, needs_chromium, screenshot, start_chrome
from tests.conftest import pipelines_cli

cli = functools.partial(pipelines_cli, timeout=600)  # the bound these tests had before the shared helper


@pytest.fixture(scope="module")
def two_runs(mnist_quick_run, tmp_path_factory):
    """A copy of the quick MNIST run's store, and a second run in it with another learning rate."""
    root = tmp_path_factory.mktemp("compare")
    out = str(root / "runs")
    shutil.copytree(mnist_quick_run["out"], out)
    done = cli(
        "run",
        "mnist",
        "--quick",
        "--data",
        mnist_quick_run["data"],
        "--output-dir",
        out,
        "--serving-dir",
        str(root / "serving"),
        "--param",
        "learning_rate=0.002",
    )
    assert done.returncode == 0, done.stderr[-3000:]
    runs = cli("runs", "mnist", "--output-dir", out)
    ids = re.findall(r"\(id (\d+)\)", runs.stdout)
    assert len(ids) == 2, runs.stdout
    return {"out": out, "ids": ids}


def test_compare_runs_prints_what_differs_and_the_metrics(two_runs, tmp_path):
    done = cli("compare-runs", "mnist", *two_runs["ids"], "--output-dir", two_runs["out"], "--report", str(tmp_path))
    assert done.returncode == 0, done.stderr[-2000:]
    differing = done.stdout.split("## Metrics")[0]
    assert "Trainer.train_config.learning_rate | 0.001 | 0.002 |" in differing
    assert "Trainer.train_config.epochs" not in differing  # the same in both: not listed
    assert re.search(r"\| accuracy \| 0\.\d{4} \| 0\.\d{4} \|", done.stdout)
    assert open(tmp_path / "curves.png", "rb").read(8) == b"\x89PNG\r\n\x1a\n"


def test_the_same_data_path_with_other_content_shows_as_a_difference():
    def view(digest):
        recorded = {"parameters": {"input_path": "/data/prices.csv"}, "data": {"input_path": digest}}
        return RunView(1, "run", _flatten("CsvExampleGen", json.dumps(recorded)), {}, {})

    assert differing_parameters([view("aaaa"), view("bbbb")]) == [
        ("CsvExampleGen.input_path (content)", ["aaaa", "bbbb"])
    ]
    assert differing_parameters([view("aaaa"), view("aaaa")]) == []


def test_compare_runs_says_which_runs_exist(two_runs):
    done = cli("compare-runs", "mnist", two_runs["ids"][0], "999", "--output-dir", two_runs["out"])
    assert done.returncode == 2 and "has no run '999'" in done.stderr and two_runs["ids"][1] in done.stderr


@needs_chromium
def test_a_browser_ticks_two_runs_and_compares_them(two_runs):
    import threading

    from selenium.webdriver.common.by import By
    from werkzeug.serving import make_server

    from serving.frontend import create_app
    from serving.frontend.config import FrontendConfig

    server = make_server("127.0.0.1", 0, create_app(FrontendConfig(runs_dir=two_runs["out"])), threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    driver = start_chrome("1100,1200")
    try:
        driver.get(f"http://127.0.0.1:{server.server_port}/runs")
        for run_id in two_runs["ids"]:
            driver.find_element(By.ID, f"pick-mnist-{run_id}").click()
        screenshot(driver, "browser_runs_page.png")
        click_through(driver, driver.find_element(By.ID, "compare-mnist"), "#differing tbody tr")
        rows = {
            r.find_element(By.TAG_NAME, "td").text: r.text
            for r in driver.find_elements(By.CSS_SELECTOR, "#differing tbody tr")
        }
        assert (
            "0.001" in rows["Trainer.train_config.learning_rate"]
            and "0.002" in rows["Trainer.train_config.learning_rate"]
        )
        curves = driver.find_element(By.CSS_SELECTOR, "figure.chart img")
        assert driver.execute_script("return arguments[0].naturalWidth", curves) > 100
        screenshot(driver, "browser_compare_page.png")
    finally:
        driver.quit()
        server.shutdown()


def test_the_runs_page_compares_the_runs_ticked(two_runs):
    from serving.frontend import create_app
    from serving.frontend.config import FrontendConfig

    web = create_app(FrontendConfig(runs_dir=two_runs["out"])).test_client()
    page = web.get("/runs").data.decode()
    assert page.count('type="checkbox" name="run"') == 2 and 'id="compare-mnist"' in page
    html = web.get("/runs/mnist/compare?" + "&".join(f"run={i}" for i in two_runs["ids"])).data.decode()
    assert "train_config.learning_rate</td><td>0.001</td><td>0.002</td>" in html
    assert 'id="metrics-compared"' in html and 'src="data:image/png;base64,' in html
    assert web.get("/runs/mnist/compare?run=" + two_runs["ids"][0]).status_code == 400
    assert web.get("/runs/mnist/compare?run=1&run=999").status_code == 404
