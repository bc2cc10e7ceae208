"""Integration tests run against the session's real Prefect API."""

import pytest


@pytest.fixture(autouse=True)
def _uses_prefect_api(prefect_api: str) -> None:
    """Every integration test talks to the session's Prefect API."""
