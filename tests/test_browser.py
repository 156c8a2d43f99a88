"""The browser tests' chromium leaves nothing in the machine's temporary folder."""

import glob
import os
import tempfile

from tests.browser import needs_chromium, start_chrome


@needs_chromium
def test_a_quit_chromium_leaves_no_folder_in_tmp():
    def leftovers() -> set[str]:
        tmp = tempfile.gettempdir()
        return set(glob.glob(os.path.join(tmp, "org.chromium.Chromium.*")) + glob.glob(os.path.join(tmp, "chromium-*")))

    before = leftovers()
    driver = start_chrome()
    try:
        driver.get("data:text/html,<title>t</title>")
        assert driver.title == "t"
        started = leftovers() - before
        assert started, "chromium's scratch folder should exist while it runs"
    finally:
        driver.quit()
    assert not (leftovers() - before), leftovers() - before
