"""`build_flow`: a model file as a Prefect flow."""

from __future__ import annotations

from collections.abc import Coroutine, Iterable, Mapping
import os
import typing as _t

from prefect import Flow

from prefect_plugboard.builder.building import build_process
from prefect_plugboard.builder.loading import load_model
from prefect_plugboard.builder.model import Model
from prefect_plugboard.process.process import Process


__all__ = ["build_flow", "flow_for"]


def build_flow(
    source: str | os.PathLike[str] | Mapping[str, _t.Any],
    *,
    process_type: str | None = None,
    overrides: Mapping[str, _t.Any] | Iterable[str] | None = None,
) -> Flow[[], Coroutine[_t.Any, _t.Any, None]]:
    """Returns a Prefect flow that runs the model in a YAML file (or dict).

    The model is checked now, so a broken one fails here, before any flow run. Each call of
    the flow builds a fresh process from the model and runs it: one flow run, one task run
    per component. The `prefect:` section of the model sets the flow's name, retries, timeout
    and, for a `RayProcess`, its Ray cluster.

    Example:
        ```python
        from prefect_plugboard import build_flow

        flow = build_flow("model.yaml", overrides={"component.input.arg.iters": 5})
        flow()                      # or: await flow() inside async code
        flow.serve(name="hello")    # a deployment (needs `prefect server start`)
        ```

    Args:
        source: A YAML file, or the model as a dict.
        process_type: `"local"` or `"ray"` to run the model on another process type.
        overrides: Values to change, e.g. `{"component.input.arg.iters": 5}`.

    Raises:
        ValidationError: The model is invalid; every problem is listed with its place.
    """
    model = load_model(source, process_type=process_type, overrides=overrides)
    return flow_for(model)


def flow_for(
    model: Model, on_process: _t.Callable[[Process], None] | None = None
) -> Flow[[], Coroutine[_t.Any, _t.Any, None]]:
    """Returns the flow that runs an already loaded model (checked here by building it once).

    Args:
        model: The model.
        on_process: Called with each process the flow builds, before it runs (to follow its
            progress).
    """
    probe = build_process(model)
    settings = model.spec.prefect

    async def run_model() -> None:
        process = build_process(model)  # fresh components for every run (and every retry)
        if on_process is not None:
            on_process(process)
        async with process:
            await process.run()

    options: dict[str, _t.Any] = {
        "name": settings.flow_name or probe.flow_name,
        "description": f"Runs the plugboard model {model.name} ({type(probe).__name__}).",
        "retries": settings.retries,
        "retry_delay_seconds": settings.retry_delay_seconds,
        "validate_parameters": False,
        "persist_result": False,
    }
    if settings.flow_run_name:
        options["flow_run_name"] = settings.flow_run_name
    if settings.timeout_seconds:
        options["timeout_seconds"] = settings.timeout_seconds
    if settings.log_prints is not None:
        options["log_prints"] = settings.log_prints
    return Flow(fn=run_model, **options)
