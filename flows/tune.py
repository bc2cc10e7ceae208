"""Entry point of the deployable `tune` flow, for `prefect.yaml` and `prefect deploy`."""

from prefect_plugboard.tune.flow import tune


__all__ = ["tune"]
