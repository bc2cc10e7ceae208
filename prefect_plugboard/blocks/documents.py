"""Channel block documents written in YAML, checked all at once and saved into Prefect.

A document names its block type, its name and its values:

```yaml
block_type_slug: plugboard-asyncio-channel
name: asyncio-default
data:
  maxsize: 1024
```

A file may hold several documents (`---` between them). `prefect-plugboard blocks save`
reads them with `read_documents` (every problem at once, nothing saved if there is one) and
saves them with `save_documents`; ready documents are in `examples/blocks/`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
import typing as _t

from prefect.types.names import BlockDocumentName
from pydantic import TypeAdapter, ValidationError
import yaml

from prefect_plugboard.blocks.channel_block import ChannelBlock
from prefect_plugboard.blocks.loading import channel_block_types


__all__ = ["BlockDocument", "SaveOutcome", "read_documents", "save_document"]

DOCUMENT_KEYS = frozenset({"block_type_slug", "name", "data"})


@dataclass(frozen=True)
class BlockDocument:
    """One document to save: where it was written, its name and the block it holds."""

    source: str
    name: str
    block: ChannelBlock[_t.Any]

    @property
    def reference(self) -> str:
        """`"<block type slug>/<name>"`, as `Block.load` and `prefect block ls` write it."""
        return f"{self.block.get_block_type_slug()}/{self.name}"

    def describe(self) -> str:
        """The reference and the values, e.g. `plugboard-ray-channel/x (maxsize=8, ...)`."""
        return f"{self.reference} ({_values(self.block)})"


class SaveOutcome(StrEnum):
    """What saving a document did."""

    SAVED = "Saved"
    UNCHANGED = "Unchanged"
    OVERWRITTEN = "Overwrote"
    SKIPPED = "Skipped"


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


async def save_document(document: BlockDocument, *, overwrite: bool) -> tuple[SaveOutcome, str]:
    """Saves one document into the current Prefect API unless it is saved already.

    A document saved with the same values is left alone; one saved with other values is only
    replaced with `overwrite`.

    Returns:
        What was done, and a line that says so.
    """
    try:
        existing: ChannelBlock[_t.Any] | None = await type(document.block).aload(document.name)
    except ValueError:
        existing = None
    if existing is None:
        await document.block.asave(document.name)
        return SaveOutcome.SAVED, f"Saved {document.describe()}"
    if _same_values(existing, document.block):
        return SaveOutcome.UNCHANGED, f"Unchanged {document.describe()}"
    if overwrite:
        await document.block.asave(document.name, overwrite=True)
        return SaveOutcome.OVERWRITTEN, f"Overwrote {document.describe()}"
    return SaveOutcome.SKIPPED, (
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


def _values(block: ChannelBlock[_t.Any]) -> str:
    # str() of a pydantic secret is masked, so a secret field would never be printed.
    return ", ".join(f"{field}={getattr(block, field)!s}" for field in type(block).model_fields)


def _same_values(saved: ChannelBlock[_t.Any], wanted: ChannelBlock[_t.Any]) -> bool:
    fields = type(wanted).model_fields
    return all(getattr(saved, field, None) == getattr(wanted, field) for field in fields)
