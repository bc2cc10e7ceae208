"""Building processes and flows from YAML models."""

from prefect_plugboard.builder.flow import build_flow, flow_for
from prefect_plugboard.builder.process_builder import Model, build_process, load_model


__all__ = ["Model", "build_flow", "build_process", "flow_for", "load_model"]
