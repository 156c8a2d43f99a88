"""Fixtures shared by the component tests."""

from __future__ import annotations

import pytest

from tests.conftest import once_per_session


@pytest.fixture(scope="session")
def house_upstream(tmp_path_factory) -> dict[str, str]:
    """Stores where ExampleGen and StatisticsGen already ran on the small house CSV, clean and with
    anomalous rows (tests/components/helpers.py: house_upstream), once for the whole session (all
    workers). Read only: `run_components(..., seed_store=...)` works on a copy."""
    from tests.components.helpers import house_upstream

    return once_per_session(tmp_path_factory, "house-upstream", house_upstream)
