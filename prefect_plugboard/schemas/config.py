"""The YAML schema of a model: plugboard's `plugboard:` section, and an optional `prefect:` one.

```yaml
plugboard:
  process:                                # or a path to another YAML holding plugboard.process
    type: plugboard.process.RayProcess    # default: LocalProcess
    connector_builder:
      type: plugboard.connector.RayConnector   # or: block: "plugboard-ray-channel/fast"
      args: {maxsize: 256}

Args:
      name: hello-ray
      parameters: {scale: 2}
      components:
      - type: hello_ray.Iterator          # a module beside the YAML file is importable
        args: {name: input, iters: 10, resources: {cpu: "500m"}}
      connectors:
      - source: input.x                   # or {entity: input, descriptor: x}
        target: slow-sleep.x
        channel: "plugboard-asyncio-channel/tight"   # optional per-connector block
prefect:                                  # optional, flow-level settings
  flow_run_name: nightly
  retries: 1
  ray_address: auto
```

YAML written for plugboard runs unchanged: its `plugboard.*` type paths name the equivalents
here, `tune:` is ignored by `run` (as plugboard's own `process run` does), and plugboard's
`state:` and component `constraints:` are accepted and unused.
"""

from __future__ import annotations

import typing as _t

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema, model_validator

from prefect_plugboard.schemas.connector import (
    DESCRIPTOR_PATTERN,
    ENTITY_PATTERN,
    ConnectorMode,
    ConnectorSocket,
)
from prefect_plugboard.schemas.resource import Resource


__all__ = [
    "ComponentArgsSpec",
    "ComponentSpec",
    "ConfigSpec",
    "ConnectorBuilderSpec",
    "ConnectorEntrySpec",
    "PlugboardSection",
    "PrefectSection",
    "ProcessArgsSpec",
    "ProcessSpec",
]

TYPE_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+$"
BLOCK_PATTERN = r"^[a-z0-9][a-z0-9-]*/[^/]+$"

_TypePath = _t.Annotated[
    str,
    Field(
        pattern=TYPE_PATTERN,
        description="Import path of a class, e.g. 'my_module.MyComponent'.",
        examples=["hello_ray.Iterator", "plugboard.library.file_io.FileWriter"],
    ),
]
_BlockReference = _t.Annotated[
    str,
    Field(
        pattern=BLOCK_PATTERN,
        description="A saved channel block, as 'block-type-slug/document-name'.",
        examples=["plugboard-ray-channel/fast"],
    ),
]
_Socket = _t.Annotated[
    ConnectorSocket,
    WithJsonSchema(
        {
            "anyOf": [
                {
                    "type": "string",
                    "pattern": rf"^{ENTITY_PATTERN}\.{DESCRIPTOR_PATTERN}$",
                    "description": "'component.field'",
                },
                {
                    "type": "object",
                    "properties": {
                        "entity": {"type": "string", "pattern": rf"^{ENTITY_PATTERN}$"},
                        "descriptor": {"type": "string", "pattern": rf"^{DESCRIPTOR_PATTERN}$"},
                    },
                    "required": ["entity", "descriptor"],
                    "additionalProperties": False,
                },
            ]
        }
    ),
]


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ComponentArgsSpec(_Spec):
    """A component's constructor arguments: the common ones, and its own (any other key)."""

    model_config = ConfigDict(extra="allow")

    name: str = Field(pattern=rf"^{ENTITY_PATTERN}$", description="Unique name of the component.")
    initial_values: dict[str, list[_t.Any]] = Field(
        default_factory=dict, description="Per input field, values consumed before its channel."
    )
    parameters: dict[str, _t.Any] = Field(
        default_factory=dict, description="Parameters, merged over the process's."
    )
    resources: Resource | None = Field(
        default=None, description="Compute resources; replaces the class's `resources`."
    )
    constraints: dict[str, _t.Any] = Field(
        default_factory=dict, description="Accepted for plugboard compatibility; unused."
    )


class ComponentSpec(_Spec):
    """One component: its class and its constructor arguments."""

    type: _TypePath
    args: ComponentArgsSpec


class ConnectorEntrySpec(_Spec):
    """One connection from an output field to an input field."""

    source: _Socket
    target: _Socket
    mode: ConnectorMode = ConnectorMode.PIPELINE
    channel: _BlockReference | None = Field(
        default=None, description="A channel block for this connector only."
    )
    args: dict[str, _t.Any] = Field(
        default_factory=dict, description="Settings for this connector only, e.g. {maxsize: 1}."
    )


class ConnectorBuilderSpec(_Spec):
    """How connectors are built: a connector class with settings, or a saved channel block."""

    type: _TypePath | None = Field(
        default=None, description="Connector class; by default the process's own kind."
    )
    args: dict[str, _t.Any] = Field(
        default_factory=dict, description="Settings for every connector, e.g. {maxsize: 256}."
    )
    block: _BlockReference | None = Field(
        default=None, description="A saved channel block, in place of `type`."
    )

    @model_validator(mode="after")
    def _type_or_block(self) -> ConnectorBuilderSpec:
        if self.type is not None and self.block is not None:
            msg = "give either `type` or `block`, not both"
            raise ValueError(msg)
        if self.block is not None and self.args:
            msg = "`args` go with `type`; a block carries its own settings"
            raise ValueError(msg)
        return self


class ProcessArgsSpec(_Spec):
    """The process's arguments: its name, parameters, components and connectors."""

    name: str | None = Field(default=None, pattern=rf"^{ENTITY_PATTERN}$")
    parameters: dict[str, _t.Any] = Field(default_factory=dict)
    components: list[ComponentSpec] = Field(min_length=1)
    connectors: list[ConnectorEntrySpec] = Field(default_factory=list)
    state: dict[str, _t.Any] | None = Field(
        default=None, description="Accepted for plugboard compatibility; unused."
    )


class ProcessSpec(_Spec):
    """A process: its type, how its connectors are built, and its arguments."""

    type: _TypePath = "prefect_plugboard.process.LocalProcess"
    connector_builder: ConnectorBuilderSpec = Field(default_factory=ConnectorBuilderSpec)
    args: ProcessArgsSpec


class PlugboardSection(_Spec):
    """The `plugboard:` section, as plugboard writes it."""

    process: ProcessSpec | str = Field(
        description="The process, or the path of a YAML file holding `plugboard.process`."
    )
    tune: dict[str, _t.Any] | None = Field(
        default=None, description="plugboard's tuning section; `run` ignores it."
    )


class PrefectSection(_Spec):
    """Flow-level settings of the Prefect flow that runs the model."""

    flow_name: str | None = Field(default=None, description="Name of the flow.")
    flow_run_name: str | None = Field(default=None, description="Name of each flow run.")
    retries: int = Field(default=0, ge=0, description="Flow-run retries (a fresh process each).")
    retry_delay_seconds: float = Field(default=0, ge=0)
    timeout_seconds: float | None = Field(default=None, gt=0)
    log_prints: bool | None = Field(default=None, description="Send `print` to the run's logs.")
    ray_address: str | None = Field(default=None, description="Ray cluster for a RayProcess.")
    ray_init_kwargs: dict[str, _t.Any] = Field(default_factory=dict)
    placement_timeout: float | None = Field(default=None, gt=0)
    stop_grace: float | None = Field(
        default=None,
        ge=0,
        description=(
            "Seconds a stopping RayProcess's components get to end before their workers are killed."
        ),
    )
    worker_sharing: _t.Literal["small", "none", "all"] | None = Field(
        default=None,
        description=(
            "How a RayProcess's components share worker processes: small (components asking "
            "for less than a CPU share, the default), none (one each) or all (one for all)."
        ),
    )


class ConfigSpec(_Spec):
    """A model file: the `plugboard:` section and optional `prefect:` settings."""

    plugboard: PlugboardSection
    prefect: PrefectSection = Field(default_factory=PrefectSection)
