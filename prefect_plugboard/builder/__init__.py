"""Building processes and flows from YAML models, and writing processes back as YAML."""

from prefect_plugboard.builder.building import build_process
from prefect_plugboard.builder.flow import build_flow, flow_for
from prefect_plugboard.builder.loading import load_model
from prefect_plugboard.builder.model import Model


__all__ = ["Model", "build_flow", "build_process", "flow_for", "load_model"]
