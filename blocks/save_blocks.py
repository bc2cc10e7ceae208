"""Saves the channel block documents of this folder into the current Prefect API.

Usage:
    python blocks/save_blocks.py [--overwrite] [FILE ...]

Registers the channel block types, then saves every YAML document given (by default every
`*.yaml` file next to this script). Each document names its block type, its name and its
values:

    block_type_slug: plugboard-asyncio-channel
    name: asyncio-default
    data:
      maxsize: 1024

The API is the one Prefect uses here: `PREFECT_API_URL` if set, else Prefect's local database
(`PREFECT_HOME`). Every document is checked before anything is saved. A document already
saved with the same values is left alone; one saved with other values is only replaced with
`--overwrite`.

Exit status: 0 when every document is saved, 1 when some were skipped (saved with other
values), 2 when a document is invalid (nothing is saved).
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
import sys

from prefect.settings import PREFECT_API_URL
from prefect.types.names import BlockDocumentName
from pydantic import TypeAdapter, ValidationError
import yaml

from prefect_plugboard.blocks import ChannelBlock, channel_block_types


HERE = Path(__file__).resolve().parent
DOCUMENT_KEYS = {"block_type_slug", "name", "data"}


@dataclass(frozen=True)
class BlockDocument:
    """One document to save: where it was written, its name and the block it holds."""

    source: str
    name: str
    block: ChannelBlock

    @property
    def reference(self) -> str:
        """`"<block type slug>/<name>"`, as `Block.load` and `prefect block ls` write it."""
        return f"{self.block.get_block_type_slug()}/{self.name}"

    def describe(self) -> str:
        """The reference and the values, e.g. `plugboard-ray-channel/x (maxsize=8, ...)`."""
        return f"{self.reference} ({_values(self.block)})"


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the script; returns its exit status."""
    parser = argparse.ArgumentParser(
        prog="python blocks/save_blocks.py",
        description="Save channel block documents (YAML) into the current Prefect API.",
    )
    parser.add_argument(
        "files",
        nargs="*",
        type=Path,
        metavar="FILE",
        help="YAML files of block documents (default: every *.yaml file in blocks/)",
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace the values of documents already saved with other values",
    )
    args = parser.parse_args(argv)
    files: list[Path] = args.files or sorted(HERE.glob("*.yaml"))

    documents, problems = read_documents(files)
    if problems:
        for problem in problems:
            print(problem, file=sys.stderr)
        print("Nothing was saved.", file=sys.stderr)
        return 2

    return asyncio.run(save_all(documents, overwrite=args.overwrite))


async def save_all(documents: Sequence[BlockDocument], *, overwrite: bool) -> int:
    """Registers the channel block types and saves the documents; returns the exit status."""
    types = channel_block_types()
    for block_class in types.values():
        await block_class.aregister_type_and_schema()
    url = PREFECT_API_URL.value()
    where = f"the Prefect API at {url}" if url else "Prefect's local database (PREFECT_HOME)"
    print(f"Registered the block types {', '.join(types)} with {where}.")

    skipped = 0
    for document in documents:
        saved, line = await save(document, overwrite=overwrite)
        skipped += not saved
        print(line)

    saved_count = len(documents) - skipped
    print(f"\n{saved_count} of {len(documents)} block documents are saved as written. List them:")
    print("    $ prefect block ls")
    if skipped:
        print("Replace the skipped ones with:")
        print("    $ python blocks/save_blocks.py --overwrite")
        return 1
    return 0


def read_documents(files: Sequence[Path]) -> tuple[list[BlockDocument], list[str]]:
    """Reads and checks every document; returns them and the problems found (all of them)."""
    types = channel_block_types()
    name_type: TypeAdapter[str] = TypeAdapter(BlockDocumentName)
    documents: list[BlockDocument] = []
    problems: list[str] = []
    seen: dict[str, str] = {}
    for source, raw in _raw_documents(files, problems):
        if not isinstance(raw, dict) or set(raw) != DOCUMENT_KEYS:
            keys = sorted(raw) if isinstance(raw, dict) else type(raw).__name__
            problems.append(f"{source}: expected the keys {sorted(DOCUMENT_KEYS)}, got {keys}")
            continue
        slug, name, data = raw["block_type_slug"], raw["name"], raw["data"]
        block_class = types.get(slug)
        if block_class is None:
            problems.append(
                f"{source}: block_type_slug {slug!r} is not a channel block type; "
                f"expected one of {', '.join(types)}"
            )
            continue
        try:
            name_type.validate_python(name)
        except ValidationError:
            problems.append(f"{source}: name {name!r} must be lowercase letters, digits and dashes")
            continue
        if not isinstance(data, dict):
            problems.append(f"{source}: data must be a mapping of field names to values")
            continue
        unknown = sorted(set(data) - set(block_class.model_fields))
        if unknown:
            problems.append(
                f"{source}: {slug} has no field {', '.join(map(repr, unknown))}; its fields "
                f"are {', '.join(block_class.model_fields)}"
            )
            continue
        try:
            block = block_class.model_validate(data)
        except ValidationError as exc:
            for error in exc.errors():
                where = ".".join(map(str, ("data", *error["loc"])))
                problems.append(f"{source}: {where}: {error['msg']}")
            continue
        document = BlockDocument(source, name, block)
        if document.reference in seen:
            problems.append(
                f"{source}: {document.reference} is also defined in {seen[document.reference]}"
            )
            continue
        seen[document.reference] = source
        documents.append(document)
    return documents, problems


async def save(document: BlockDocument, *, overwrite: bool) -> tuple[bool, str]:
    """Saves one document unless it is saved already.

    Returns:
        Whether the document is saved now, and a line saying what was done.
    """
    try:
        existing: ChannelBlock | None = await type(document.block).aload(document.name)
    except ValueError:
        existing = None
    if existing is None:
        await document.block.asave(document.name)
        return True, f"Saved {document.describe()}"
    if _same_values(existing, document.block):
        return True, f"Unchanged {document.describe()}"
    if overwrite:
        await document.block.asave(document.name, overwrite=True)
        return True, f"Overwrote {document.describe()}"
    return False, (
        f"Skipped {document.reference}: it is saved with {_values(existing)}, "
        f"{document.source} has {_values(document.block)}"
    )


def _raw_documents(files: Sequence[Path], problems: list[str]) -> Iterator[tuple[str, object]]:
    for path in files:
        try:
            loaded = list(yaml.safe_load_all(path.read_text()))
        except (OSError, yaml.YAMLError) as exc:
            problems.append(f"{path}: cannot read it: {exc}")
            continue
        documents = [d for d in loaded if d is not None]
        if not documents:
            problems.append(f"{path}: holds no document")
        for index, raw in enumerate(documents):
            yield (f"{path}#{index + 1}" if len(documents) > 1 else str(path)), raw


def _values(block: ChannelBlock) -> str:
    # str() of a pydantic secret is masked, so a secret field would never be printed.
    return ", ".join(f"{field}={getattr(block, field)!s}" for field in type(block).model_fields)


def _same_values(saved: ChannelBlock, wanted: ChannelBlock) -> bool:
    fields = type(wanted).model_fields
    return all(getattr(saved, field, None) == getattr(wanted, field) for field in fields)


if __name__ == "__main__":
    sys.exit(main())
