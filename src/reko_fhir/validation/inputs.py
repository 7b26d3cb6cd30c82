"""Reading what ``reko-fhir validate`` is given: files, folders (recursive), Bundles, NDJSON;
JSON or XML told apart by content, never by file name."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lxml import etree

from reko_fhir.formats import MAX_JSON_DEPTH, json_depth
from reko_fhir.validation.xmljson import core_reader
from reko_fhir.xmlsafe import UnsafeXmlError

SUFFIXES = (".json", ".xml", ".ndjson")


class InputError(ValueError):
    """A file that cannot be read as FHIR at all (exit code 2)."""


@dataclass(frozen=True, slots=True)
class Input:
    """One resource to validate and where it came from (``path`` or ``path:line``)."""

    source: str
    resource: dict[str, Any]


def files_in(paths: list[Path]) -> Iterator[Path]:
    for path in paths:
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*") if p.suffix in SUFFIXES and p.is_file())
        elif path.is_file():
            yield path
        else:
            raise InputError(f"{path}: no such file or folder")


def read_inputs(path: Path) -> list[Input]:
    """The resources in one file; InputError (naming the file) when it is not readable FHIR."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"{path}: {exc.strerror or exc}") from None
    head = data.lstrip()[:1]
    try:
        if head == b"<":
            return [Input(str(path), core_reader().read(data))]
        text = data.decode("utf-8-sig")
        try:
            return [Input(str(path), _object(json.loads(text), str(path)))]
        except json.JSONDecodeError:
            lines = [(n, line) for n, line in enumerate(text.splitlines(), 1) if line.strip()]
            if len(lines) < 2:
                raise
            return [
                Input(f"{path}:{n}", _object(json.loads(line), f"{path}:{n}")) for n, line in lines
            ]
    except RecursionError:
        raise InputError(f"{path}: nested deeper than {MAX_JSON_DEPTH} levels") from None
    except (json.JSONDecodeError, UnicodeDecodeError, UnsafeXmlError, etree.XMLSyntaxError) as exc:
        raise InputError(f"{path}: not readable as FHIR JSON, NDJSON or XML: {exc}") from None


def _object(value: Any, source: str) -> dict[str, Any]:
    if not isinstance(value, dict) or not isinstance(value.get("resourceType"), str):
        raise InputError(f"{source}: not a FHIR resource (a JSON object with a resourceType)")
    # The validator walks recursively: deep documents are refused before it sees them.
    if json_depth(value) > MAX_JSON_DEPTH:
        raise InputError(f"{source}: nested deeper than {MAX_JSON_DEPTH} levels")
    return value
