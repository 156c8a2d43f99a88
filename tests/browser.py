"""Headless chromium for the browser tests (Debian's chromium and chromium-driver; .ci/run installs them)."""

from __future__ import annotations

import os
import shutil
import tempfile

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
REPORTS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "reports")  # screenshots

needs_chromium = pytest.mark.skipif(
    not (CHROMIUM and CHROMEDRIVER), reason="needs Debian's chromium and chromium-driver (.ci/run installs them)"
)


def start_chrome(window: str = "1000,900"):
    """A headless chromium driven by Selenium; the caller quits it. Chromium makes its socket folder
    (org.chromium.Chromium.*) in TMPDIR and leaves it behind, so it gets a folder of its own
    (`driver.scratch_dir`) that quit() removes."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        f"--window-size={window}",
    ):
        options.add_argument(flag)
    scratch = tempfile.mkdtemp(prefix="chromium-")
    try:
        driver = webdriver.Chrome(service=Service(CHROMEDRIVER, env={**os.environ, "TMPDIR": scratch}), options=options)
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    quit_driver = driver.quit

    def quit_and_clean() -> None:
        try:
            quit_driver()
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    driver.quit = quit_and_clean
    driver.scratch_dir = scratch
    return driver


def screenshot(driver, name: str, max_height: int = 4000) -> str:
    """The whole page (up to `max_height` pixels) as reports/NAME; `make screenshots` copies them
    into docs/screenshots/ for the README. The window gets its size back afterwards."""
    os.makedirs(REPORTS, exist_ok=True)
    path = os.path.join(REPORTS, name)
    size = driver.get_window_size()
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(size["width"], min(max(height, size["height"]), max_height))
    try:
        assert driver.save_screenshot(path)
    finally:
        driver.set_window_size(size["width"], size["height"])
    return path


# What chromedriver sometimes answers, instead of a stale element reference, about a node of a
# document the browser is replacing (SeleniumHQ/selenium#15401; CI's chromium 156 hit it once in
# selenium's own staleness_of).
GONE_NODE_ERRORS = ("Node with given id does not belong to the document", "No node with given id found")


def is_stale(element) -> bool:
    """Whether `element` belongs to a document the browser has left (or is leaving): selenium's
    staleness_of, which also takes chromedriver's other answers for that as a yes."""
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.support import expected_conditions

    try:
        return expected_conditions.staleness_of(element)(None)
    except WebDriverException as e:
        if any(message in str(e) for message in GONE_NODE_ERRORS):
            return True
        raise


def click_through(driver, element, selector: str, timeout: float = 30.0):
    """Click a link or submit button and wait for the next page: the old page gone and `selector` (CSS)
    on the new one, its images loaded. A click returns before the navigation it starts has finished, so reading the page
    straight after it can still see the old one."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    old_page = driver.find_element(By.TAG_NAME, "html")
    element.click()
    wait = WebDriverWait(driver, timeout)
    wait.until(lambda _: is_stale(old_page))
    found = wait.until(expected_conditions.presence_of_element_located((By.CSS_SELECTOR, selector)))
    wait.until(lambda d: d.execute_script("return document.readyState") == "complete")  # images loaded too
    return found


def publish(target: str, width: int = 900) -> list[str]:
    """reports/browser_*.png scaled to `width` pixels into `target` (the README's screenshots)."""
    import glob

    from PIL import Image

    os.makedirs(target, exist_ok=True)
    written = []
    for path in sorted(glob.glob(os.path.join(REPORTS, "browser_*.png"))):
        image = Image.open(path).convert("RGB")
        if image.width > width:
            image = image.resize((width, round(image.height * width / image.width)), Image.LANCZOS)
        out = os.path.join(target, os.path.basename(path).removeprefix("browser_"))
        image.quantize(colors=128).save(out, optimize=True)
        written.append(out)
    return written


if __name__ == "__main__":  # python -m tests.browser DIR: what `make screenshots` publishes
    import sys

    for written in publish(sys.argv[1] if len(sys.argv) > 1 else "docs/screenshots"):
        print(written)
