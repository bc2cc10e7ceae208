"""`ProcessBuilder`: plugboard's way of building a process from a `ProcessSpec`."""

from __future__ import annotations

from collections.abc import Mapping
import typing as _t

from prefect_plugboard.builder.building import build_process
from prefect_plugboard.builder.loading import load_model
from prefect_plugboard.process.process import Process
from prefect_plugboard.schemas.config import ConfigSpec, ProcessSpec


__all__ = ["ProcessBuilder"]


class ProcessBuilder:
    """Builds a `Process` from a `ProcessSpec`, as plugboard's `ProcessBuilder` does.

    The spec goes through the same checks as a model file (`load_model`, `build_process`):
    every problem is reported at once, in a `ValidationError`, before anything starts.

    Example:
        ```python
        config = ConfigSpec.model_validate(yaml.safe_load(open("model.yaml")))
        process = ProcessBuilder.build(config.plugboard.process)
        ```
    """

    @classmethod
    def build(cls, spec: ProcessSpec | ConfigSpec | Mapping[str, _t.Any] | str) -> Process:
        """Returns the process `spec` describes.

        Args:
            spec: A `ProcessSpec` (or its dict), a whole `ConfigSpec`, or the path of a YAML
                file holding `plugboard.process` (relative paths inside it are relative to the
                working directory).

        Raises:
            ValidationError: Every problem found, each with its place.
        """
        if isinstance(spec, ConfigSpec):
            data: dict[str, _t.Any] = spec.model_dump(mode="json", exclude_unset=True)
        elif isinstance(spec, ProcessSpec):
            process = spec.model_dump(mode="json", exclude_unset=True)
            data = {"plugboard": {"process": process}}
        elif isinstance(spec, str):
            return build_process(load_model(spec))
        else:
            data = {"plugboard": {"process": dict(spec)}}
        return build_process(load_model(data))
