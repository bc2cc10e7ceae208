"""Integration tests run against the session's real Prefect API."""

import pytest

from tests.deployments import client_env


@pytest.fixture(autouse=True)
def _uses_prefect_api(prefect_api: str) -> None:
    """Every integration test talks to the session's Prefect API."""


@pytest.fixture(scope="module")
def server(prefect_api: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The environment of a user's commands talking to the run's `prefect server start`."""
    return client_env(prefect_api, tmp_path_factory.mktemp("prefect-home"))
