"""The commands of `prefect-plugboard`."""

from __future__ import annotations

import asyncio
from enum import StrEnum
import json
import os
from pathlib import Path
import sys
import time
import typing as _t

import typer


if _t.TYPE_CHECKING:
    from prefect import Flow

from prefect_plugboard.builder import Model, build_process, load_model
from prefect_plugboard.builder.flow import flow_for
from prefect_plugboard.cli.blocks import blocks_app
from prefect_plugboard.cli.output import (
    console,
    describe_error,
    errors,
    live_view,
    progress_table,
)
from prefect_plugboard.diagram import mermaid_diagram, mermaid_live_url
from prefect_plugboard.process.process import Process
from prefect_plugboard.schemas.config import ConfigSpec


__all__ = ["app", "main"]

app = typer.Typer(
    name="prefect-plugboard",
    help="Run, validate and draw plugboard models (YAML) as Prefect flows.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(blocks_app)


class ProcessType(StrEnum):
    """Where a model's components run."""

    LOCAL = "local"
    RAY = "ray"


FileArgument = _t.Annotated[Path, typer.Argument(help="The model's YAML file.", show_default=False)]
ParamOption = _t.Annotated[
    list[str] | None,
    typer.Option(
        "-p",
        "--param",
        help="Override a value: component.NAME.arg.FIELD=VALUE, component.NAME.parameter.FIELD"
        "=VALUE, component.NAME.initial_value.FIELD=VALUE, or a process parameter NAME=VALUE.",
        show_default=False,
    ),
]
ProcessTypeOption = _t.Annotated[
    ProcessType | None,
    typer.Option("--process-type", help="Run on this process type instead of the model's."),
]


def _fail(error: BaseException) -> _t.NoReturn:
    errors.print(f"[red]Error:[/red] {describe_error(error)}")
    if os.environ.get("PREFECT_PLUGBOARD_TRACEBACK"):
        raise error
    raise typer.Exit(1)


def _load(file: Path, process_type: ProcessType | None, params: list[str] | None) -> Model:
    try:
        return load_model(file, process_type=process_type, overrides=params or None)
    except Exception as exc:  # noqa: BLE001 - every error is reported the same way
        _fail(exc)


def _build(file: Path, process_type: ProcessType | None, params: list[str] | None) -> Process:
    model = _load(file, process_type, params)
    try:
        return build_process(model)
    except Exception as exc:  # noqa: BLE001 - every error is reported the same way
        _fail(exc)


def _summary(process: Process) -> str:
    return (
        f"{len(process.components)} components, {len(process.connectors)} connectors, "
        f"on a {type(process).__name__}"
    )


@app.command()
def validate(
    file: FileArgument,
    process_type: ProcessTypeOption = None,
    param: ParamOption = None,
) -> None:
    """Check a model without running it: every problem, with its place in the file."""
    process = _build(file, process_type, param)
    study = _check_study(file, process_type, param)
    console.print(f"[green]✓[/green] {file} is valid: {_summary(process)}{study}.")
    console.print(f"Run it with:\n  prefect-plugboard run {file}")
    if study:
        console.print(f"Tune it with:\n  prefect-plugboard tune {file}")


def _check_study(file: Path, process_type: ProcessType | None, params: list[str] | None) -> str:
    """Checks a model's `tune:` section, if it has one (needs the tune extra)."""
    model = _load(file, process_type, params)
    if model.spec.plugboard.tune is None:
        return ""
    try:
        from prefect_plugboard.tune.template import check_study
    except ImportError:
        return "; its tune: section is not checked (pip install 'prefect-plugboard[tune]')"
    try:
        trials = check_study(model)
    except Exception as exc:  # noqa: BLE001 - every error is reported the same way
        _fail(exc)
    return f"; its study: {trials} trials"


@app.command()
def run(
    file: FileArgument,
    process_type: ProcessTypeOption = None,
    param: ParamOption = None,
    ray_address: _t.Annotated[
        str | None, typer.Option("--ray-address", help="The Ray cluster to run on (Ray only).")
    ] = None,
) -> None:
    """Run a model as a Prefect flow: one flow run, one task run per component."""
    model = _load(file, process_type, param)
    if ray_address:
        model.spec.prefect.ray_address = ray_address
    current: list[Process] = []
    try:
        flow = flow_for(model, on_process=current.append)
    except Exception as exc:  # noqa: BLE001
        _fail(exc)
    console.print(f"Running {file} as flow {flow.name!r}…")
    started = time.monotonic()
    try:
        state = asyncio.run(_run(flow, lambda: current[-1] if current else None))
    except KeyboardInterrupt:
        errors.print("[yellow]Interrupted.[/yellow]")
        raise typer.Exit(130) from None
    process = current[-1] if current else None
    flow_run_id = state.state_details.flow_run_id
    if state.is_completed():
        summary = _summary(process) if process else ""
        console.print(
            f"[green]✓[/green] Completed in {time.monotonic() - started:.1f}s: {summary}."
        )
    else:
        error = asyncio.run(state.aresult(raise_on_failure=False))
        detail = describe_error(error) if isinstance(error, BaseException) else state.message
        errors.print(f"[red]{state.name}:[/red] {detail}")
    console.print(
        f"Inspect the run with:\n  prefect flow-run inspect {flow_run_id}\n"
        f"  prefect flow-run logs {flow_run_id}"
    )
    if not state.is_completed():
        raise typer.Exit(1)


async def _run(flow: _t.Any, process: _t.Callable[[], Process | None]) -> _t.Any:
    async with live_view(progress_table(process)):
        return await flow(return_state=True)


@app.command()
def diagram(
    file: FileArgument,
    process_type: ProcessTypeOption = None,
    param: ParamOption = None,
) -> None:
    """Print the model's graph as a Mermaid flowchart (and a mermaid.live link)."""
    process = _build(file, process_type, param)
    text = mermaid_diagram(process)
    sys.stdout.write(text + "\n")
    errors.print(f"Open it in an editor: {mermaid_live_url(text)}")


@app.command()
def schema(
    output: _t.Annotated[
        Path | None, typer.Option("--output", "-o", help="Write to this file.")
    ] = None,
) -> None:
    """Print the JSON Schema of model files, for completion and checks in editors."""
    text = json.dumps(ConfigSpec.model_json_schema(), indent=2)
    if output is None:
        sys.stdout.write(text + "\n")
        return
    output.write_text(text + "\n", encoding="utf-8")
    console.print(f"Wrote the schema to {output}. Point your editor at it, e.g. first line:")
    console.print(f"  # yaml-language-server: $schema={output}", markup=False)


@app.command()
def tune(
    file: FileArgument,
    process_type: ProcessTypeOption = None,
    param: ParamOption = None,
    num_samples: _t.Annotated[
        int | None, typer.Option("--num-samples", min=1, help="Trials, in place of the model's.")
    ] = None,
    max_concurrent: _t.Annotated[
        int | None,
        typer.Option("--max-concurrent", min=1, help="Trials at once, in place of the model's."),
    ] = None,
    study_name: _t.Annotated[
        str | None, typer.Option("--study-name", help="The study's name (Optuna, Prefect tags).")
    ] = None,
    ray_address: _t.Annotated[
        str | None, typer.Option("--ray-address", help="The Ray cluster to run the trials on.")
    ] = None,
) -> None:
    """Tune a model's parameters (its `tune:` section): each trial a child flow run."""
    try:
        from prefect_plugboard.tune.command import run_tune_command
    except ImportError as exc:
        _fail(
            RuntimeError(
                f"tuning needs the tune extra: pip install 'prefect-plugboard[tune]' ({exc})"
            )
        )
    code = run_tune_command(
        file,
        process_type=process_type.value if process_type else None,
        params=param,
        num_samples=num_samples,
        max_concurrent=max_concurrent,
        study_name=study_name,
        ray_address=ray_address,
    )
    if code:
        raise typer.Exit(code)


def main() -> None:
    """Runs the command line."""
    app()


def _needs_a_server(command: str) -> None:
    from prefect.settings import PREFECT_API_URL

    if not PREFECT_API_URL.value():
        _fail(
            RuntimeError(
                f"`{command}` needs a Prefect server (a deployment cannot live in a temporary "
                "one). Start one with `prefect server start` and point at it:\n"
                "  export PREFECT_API_URL=http://127.0.0.1:4200/api"
            )
        )


def _deployment_parameters(
    file: Path, process_type: ProcessType | None, params: list[str] | None, *, embed: bool
) -> dict[str, _t.Any]:
    from prefect_plugboard.builder.overrides import parse_override
    from prefect_plugboard.builder.yaml_source import read_yaml_file

    model = _load(file, process_type, params)
    try:
        build_process(model)  # refuse a broken model now, not at its first run
        config: _t.Any = read_yaml_file(file)[0] if embed else str(file.resolve())
        overrides = dict(parse_override(p) for p in params or [])
    except Exception as exc:  # noqa: BLE001
        _fail(exc)
    return {
        "config": config,
        "process_type": process_type.value if process_type else None,
        "parameters": overrides or None,
    }


@app.command()
def serve(
    file: FileArgument,
    name: _t.Annotated[str, typer.Option("--name", "-n", help="The deployment's name.")],
    process_type: ProcessTypeOption = None,
    param: ParamOption = None,
) -> None:
    """Serve a model as the deployment `run-process/NAME` from this terminal.

    Runs happen here, in this working directory, with the model's folder importable.
    """
    from prefect_plugboard.flows import run_process

    _needs_a_server("serve")
    parameters = _deployment_parameters(file, process_type, param, embed=False)
    folder = str(file.resolve().parent)
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [folder, os.environ.get("PYTHONPATH")]))
    console.print(f"Serving {file} as deployment 'run-process/{name}'. Run it with:")
    console.print(f"  prefect deployment run 'run-process/{name}' --watch")
    console.print("Stop serving with Ctrl+C.")
    run_process.serve(name=name, parameters=parameters, print_starting_message=False)


@app.command()
def deploy(
    file: FileArgument,
    name: _t.Annotated[str, typer.Option("--name", "-n", help="The deployment's name.")],
    pool: _t.Annotated[str, typer.Option("--pool", "-p", help="The work pool to run on.")],
    process_type: ProcessTypeOption = None,
    param: ParamOption = None,
) -> None:
    """Create the deployment `run-process/NAME` on a work pool, carrying the model with it.

    A worker of the pool runs it in the model's folder (its modules import from there).
    """
    from prefect_plugboard.flows import run_process

    _needs_a_server("deploy")
    parameters = _deployment_parameters(file, process_type, param, embed=True)
    try:
        source = _t.cast(
            "Flow[..., _t.Any]",
            run_process.from_source(
                source=str(file.resolve().parent),
                entrypoint="prefect_plugboard.flows.run_process",
            ),
        )
        deployment_id = source.deploy(
            name=name,
            work_pool_name=pool,
            parameters=parameters,
            build=False,
            push=False,
            print_next_steps=False,
        )
    except Exception as exc:  # noqa: BLE001
        _fail(exc)
    console.print(
        f"[green]✓[/green] Deployment 'run-process/{name}' ({deployment_id}) on work pool {pool!r}."
    )
    console.print(f"Start a worker, then run it:\n  prefect worker start --pool {pool}")
    console.print(f"  prefect deployment run 'run-process/{name}' --watch")
