"""Processes: run a graph of components as a Prefect flow."""

from prefect_plugboard.process.local_process import LocalProcess
from prefect_plugboard.process.process import Process


__all__ = ["LocalProcess", "Process"]
