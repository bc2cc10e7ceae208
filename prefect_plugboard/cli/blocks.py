"""`prefect-plugboard blocks`: channel blocks saved into Prefect from YAML documents."""

from __future__ import annotations

import asyncio
from pathlib import Path
import typing as _t

import typer

from prefect_plugboard.cli.output import console, errors


__all__ = ["blocks_app"]

blocks_app = typer.Typer(
    name="blocks",
    help="Save channel blocks (YAML documents) into the current Prefect API.",
    no_args_is_help=True,
)


@blocks_app.command()
def save(
    files: _t.Annotated[
        list[Path],
        typer.Argument(
            help="YAML files of block documents (e.g. examples/blocks/*.yaml).",
            show_default=False,
        ),
    ],
    overwrite: _t.Annotated[
        bool, typer.Option(help="Replace documents already saved with other values.")
    ] = False,
) -> None:
    """Registers the channel block types, then saves every document of FILES.

    Every document is checked first; if one is invalid, nothing is saved (exit 2). A document
    saved already with other values is skipped unless --overwrite (exit 1).
    """
    from prefect_plugboard.blocks.documents import read_documents

    documents, problems = read_documents(files)
    if problems:
        for problem in problems:
            errors.print(problem, markup=False)
        errors.print("Nothing was saved.")
        raise typer.Exit(2)
    skipped = asyncio.run(_save_all(documents, overwrite=overwrite))
    if skipped:
        console.print(
            "Replace the skipped ones with:\n    $ prefect-plugboard blocks save --overwrite ..."
        )
        raise typer.Exit(1)


async def _save_all(documents: _t.Sequence[_t.Any], *, overwrite: bool) -> int:
    from prefect.settings import PREFECT_API_URL

    from prefect_plugboard.blocks import channel_block_types
    from prefect_plugboard.blocks.documents import SaveOutcome, save_document

    types = channel_block_types()
    for block_class in types.values():
        await block_class.aregister_type_and_schema()
    url = PREFECT_API_URL.value()
    where = f"the Prefect API at {url}" if url else "Prefect's local database (PREFECT_HOME)"
    console.print(f"Registered the block types {', '.join(types)} with {where}.", markup=False)
    skipped = 0
    for document in documents:
        outcome, line = await save_document(document, overwrite=overwrite)
        skipped += outcome is SaveOutcome.SKIPPED
        console.print(line, markup=False)
    saved = len(documents) - skipped
    console.print(f"\n{saved} of {len(documents)} block documents are saved as written. List them:")
    console.print("    $ prefect block ls")
    return skipped
