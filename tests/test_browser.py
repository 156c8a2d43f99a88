"""The browser tests' chromium leaves nothing in the machine's temporary folder."""

import glob
import os
import tempfile

from tests.browser import needs_chromium, start_chrome

SOCKET_FOLDERS = "org.chromium.Chromium.*"


@needs_chromium
def test_a_quit_chromium_leaves_no_folder_in_tmp():
    """Only this chromium's own folders are looked at: other browser tests may run beside it."""

    def in_tmp() -> set[str]:
        return set(glob.glob(os.path.join(tempfile.gettempdir(), SOCKET_FOLDERS)))

    before = in_tmp()
    driver = start_chrome()
    scratch = driver.scratch_dir
    try:
        driver.get("data:text/html,<title>t</title>")
        assert driver.title == "t"
        assert glob.glob(os.path.join(scratch, SOCKET_FOLDERS)), "chromium's socket folder should be in its own TMPDIR"
    finally:
        driver.quit()
    assert not os.path.exists(scratch)
    assert not (in_tmp() - before), in_tmp() - before
