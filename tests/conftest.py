import os

import pytest

SHARED_DATA = os.environ.get(
    "SHARED_DATA_DIR", os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data")
)


@pytest.fixture
def shared_data():
    """../shared/data beside the checkout; tests that need it skip when it is absent."""
    path = os.path.abspath(SHARED_DATA)
    if not os.path.isdir(path):
        pytest.skip(f"shared data not found at {path} (set SHARED_DATA_DIR)")
    return path
