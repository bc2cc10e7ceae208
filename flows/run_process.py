"""Entry point of the deployable `run-process` flow, for `prefect.yaml` and `prefect deploy`."""

from prefect_plugboard.flows import run_process


__all__ = ["run_process"]
