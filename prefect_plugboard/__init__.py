"""prefect-plugboard: run graphs of long-lived, stateful components on Prefect.

Every public name is importable from here and from the plugboard-style submodules
(`prefect_plugboard.component`, `.connector`, `.process`, `.schemas`, `.library`). Names are
imported on first use, so that `import prefect_plugboard` stays cheap (Ray workers import it).
"""

from __future__ import annotations

import typing as _t

from prefect_plugboard._lazy import lazy_exports


if _t.TYPE_CHECKING:
    from prefect_plugboard.blocks import (
        AsyncioChannelBlock as AsyncioChannelBlock,
        ChannelBlock as ChannelBlock,
        RayChannelBlock as RayChannelBlock,
    )
    from prefect_plugboard.builder import (
        build_flow as build_flow,
        build_process as build_process,
        load_model as load_model,
    )
    from prefect_plugboard.component import (
        IO as IO,
        Component as Component,
        ComponentArgsDict as ComponentArgsDict,
        IOController as IOController,
    )
    from prefect_plugboard.connector import (
        AsyncioConnector as AsyncioConnector,
        Connector as Connector,
        ConnectorBuilder as ConnectorBuilder,
        RayConnector as RayConnector,
    )
    from prefect_plugboard.events import (
        Event as Event,
        StopEvent as StopEvent,
    )
    from prefect_plugboard.exceptions import (
        ChannelClosedError as ChannelClosedError,
        ChannelError as ChannelError,
        ComponentCrashedError as ComponentCrashedError,
        ComponentError as ComponentError,
        ConstraintError as ConstraintError,
        IOSetupError as IOSetupError,
        IOStreamClosedError as IOStreamClosedError,
        NotInitialisedError as NotInitialisedError,
        PlugboardError as PlugboardError,
        ProcessStateError as ProcessStateError,
        RayConnectionError as RayConnectionError,
        ResourceError as ResourceError,
        StudyError as StudyError,
        ValidationError as ValidationError,
    )
    from prefect_plugboard.library import (
        FileReader as FileReader,
        FileWriter as FileWriter,
    )
    from prefect_plugboard.process import (
        LocalProcess as LocalProcess,
        Process as Process,
        ProcessBuilder as ProcessBuilder,
        RayProcess as RayProcess,
    )
    from prefect_plugboard.schemas import (
        ConfigSpec as ConfigSpec,
        ConnectorSpec as ConnectorSpec,
        ProcessSpec as ProcessSpec,
        Resource as Resource,
        Status as Status,
    )
    from prefect_plugboard.tune import Tuner as Tuner


__version__ = "0.1.0"

_PUBLIC: dict[str, str] = {
    "Event": "prefect_plugboard.events",
    "StopEvent": "prefect_plugboard.events",
    "build_flow": "prefect_plugboard.builder",
    "build_process": "prefect_plugboard.builder",
    "load_model": "prefect_plugboard.builder",
    "IO": "prefect_plugboard.component",
    "AsyncioChannelBlock": "prefect_plugboard.blocks",
    "AsyncioConnector": "prefect_plugboard.connector",
    "ChannelBlock": "prefect_plugboard.blocks",
    "ChannelClosedError": "prefect_plugboard.exceptions",
    "ChannelError": "prefect_plugboard.exceptions",
    "Component": "prefect_plugboard.component",
    "ComponentArgsDict": "prefect_plugboard.component",
    "ComponentCrashedError": "prefect_plugboard.exceptions",
    "ComponentError": "prefect_plugboard.exceptions",
    "ConfigSpec": "prefect_plugboard.schemas",
    "ConstraintError": "prefect_plugboard.exceptions",
    "IOSetupError": "prefect_plugboard.exceptions",
    "IOStreamClosedError": "prefect_plugboard.exceptions",
    "NotInitialisedError": "prefect_plugboard.exceptions",
    "ProcessBuilder": "prefect_plugboard.process",
    "ProcessSpec": "prefect_plugboard.schemas",
    "Connector": "prefect_plugboard.connector",
    "ConnectorBuilder": "prefect_plugboard.connector",
    "ConnectorSpec": "prefect_plugboard.schemas",
    "FileReader": "prefect_plugboard.library",
    "FileWriter": "prefect_plugboard.library",
    "IOController": "prefect_plugboard.component",
    "LocalProcess": "prefect_plugboard.process",
    "PlugboardError": "prefect_plugboard.exceptions",
    "Process": "prefect_plugboard.process",
    "ProcessStateError": "prefect_plugboard.exceptions",
    "RayChannelBlock": "prefect_plugboard.blocks",
    "RayConnector": "prefect_plugboard.connector",
    "RayProcess": "prefect_plugboard.process",
    "Resource": "prefect_plugboard.schemas",
    "RayConnectionError": "prefect_plugboard.exceptions",
    "ResourceError": "prefect_plugboard.exceptions",
    "Status": "prefect_plugboard.schemas",
    "StudyError": "prefect_plugboard.exceptions",
    "Tuner": "prefect_plugboard.tune",
    "ValidationError": "prefect_plugboard.exceptions",
}

__all__ = [
    "AsyncioChannelBlock",
    "AsyncioConnector",
    "ChannelBlock",
    "ChannelClosedError",
    "ChannelError",
    "Component",
    "ComponentArgsDict",
    "ComponentCrashedError",
    "ComponentError",
    "ConfigSpec",
    "ConstraintError",
    "Connector",
    "ConnectorBuilder",
    "ConnectorSpec",
    "Event",
    "FileReader",
    "FileWriter",
    "IO",
    "IOController",
    "IOSetupError",
    "IOStreamClosedError",
    "LocalProcess",
    "NotInitialisedError",
    "PlugboardError",
    "Process",
    "ProcessBuilder",
    "ProcessSpec",
    "ProcessStateError",
    "RayChannelBlock",
    "RayConnectionError",
    "RayConnector",
    "RayProcess",
    "Resource",
    "ResourceError",
    "Status",
    "StopEvent",
    "StudyError",
    "Tuner",
    "ValidationError",
    "__version__",
    "build_flow",
    "build_process",
    "load_model",
]


__getattr__, __dir__ = lazy_exports(__name__, _PUBLIC)
