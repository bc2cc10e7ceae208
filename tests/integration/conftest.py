"""Integration tests run against the session's real Prefect API."""

from collections.abc import Iterator

import pytest

from tests.deployments import prefect_server


@pytest.fixture(autouse=True)
def _uses_prefect_api(prefect_api: str) -> None:
    """Every integration test talks to the session's Prefect API."""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A `prefect server start` of the module's own, on a free loopback port; the environment
    that talks to it."""
    with prefect_server(tmp_path_factory.mktemp("prefect-home")) as env:
        yield env
