"""`run-process`: the deployable flow that runs any plugboard model.

Deploy it once and run any model with it: `prefect deployment run 'run-process/NAME'`, from
the Prefect UI, or on a schedule. `config` is a YAML file's path, YAML text, or the model as
a dict (a deployment carrying its model is self-contained); `parameters` are overrides as
`prefect-plugboard run -p` takes them.

    prefect-plugboard serve model.yaml --name hello            # serve it from here
    prefect-plugboard deploy model.yaml --name hello --pool P   # or on a work pool
    prefect deployment run 'run-process/hello' --watch
"""

from typing import Any

from prefect import flow
from prefect.client.schemas.objects import State

from prefect_plugboard.builder import build_process, load_model
from prefect_plugboard.builder.yaml_source import load_yaml
from prefect_plugboard.process.process import run_as_the_flow


__all__ = ["run_process"]

# No `from __future__ import annotations` here: Prefect builds the parameters' schema from
# these annotations at run time.


@flow(name="run-process", persist_result=False)
async def run_process(
    config: str | dict[str, Any],
    process_type: str | None = None,
    parameters: dict[str, Any] | None = None,
) -> State | None:
    """Runs a plugboard model: one task run per component, in this flow run.

    Args:
        config: The model: a YAML file's path (relative to the run's working directory),
            YAML text, or the model as a dict.
        process_type: `local` or `ray` to run the model on another process type.
        parameters: Overrides, e.g. `{"component.input.arg.iters": 5}`.
    """
    source: str | dict[str, Any] = config
    if isinstance(config, str) and "\n" in config:
        source, _ = load_yaml(config, "the config parameter")
    model = load_model(source, process_type=process_type, overrides=parameters or None)
    process = build_process(model)

    async def run_then_destroy() -> None:
        try:
            await process.run()  # initialises the process first
        finally:
            await process.destroy()

    return await run_as_the_flow(process, run_then_destroy())
