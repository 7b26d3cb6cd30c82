"""Reading what ``reko-fhir validate`` is given: files, folders (recursive), Bundles, NDJSON;
JSON or XML told apart by content, never by file name.

In a folder, files that are JSON or XML but not FHIR (``package.json``, a Maven ``pom.xml``)
are skipped with a note (:class:`NotFhirError`); ``--include``/``--exclude`` globs choose files.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lxml import etree

from reko_fhir.formats import MAX_JSON_DEPTH, json_depth
from reko_fhir.validation.definitions import FHIR_NS
from reko_fhir.validation.xmljson import core_reader
from reko_fhir.xmlsafe import UnsafeXmlError, parse_xml_safely

SUFFIXES = (".json", ".xml", ".ndjson")


class InputError(ValueError):
    """A file that cannot be read as FHIR at all (exit code 2)."""


class NotFhirError(InputError):
    """Well-formed JSON or XML that is no FHIR resource: skipped in a folder, with a note."""


@dataclass(frozen=True, slots=True)
class Input:
    """One resource to validate and where it came from (``path`` or ``path:line``)."""

    source: str
    resource: dict[str, Any]


def files_in(
    paths: list[Path], include: list[str] | None = None, exclude: list[str] | None = None
) -> Iterator[tuple[Path, bool]]:
    """Each file to read, and whether it was found in a folder (rather than named).

    A glob is matched against the path below the folder and against the file name
    (``--include '*.ndjson'``, ``--exclude 'examples/*'``); named files are always read.
    """
    for path in paths:
        if path.is_dir():
            for found in sorted(p for p in path.rglob("*") if p.suffix in SUFFIXES):
                relative = found.relative_to(path).as_posix()
                if found.is_file() and _chosen(relative, found.name, include, exclude):
                    yield found, True
        elif path.is_file():
            yield path, False
        else:
            raise InputError(f"{path}: no such file or folder")


def _chosen(relative: str, name: str, include: list[str] | None, exclude: list[str] | None) -> bool:
    def hit(globs: list[str]) -> bool:
        return any(fnmatch.fnmatch(relative, g) or fnmatch.fnmatch(name, g) for g in globs)

    return (not include or hit(include)) and not (exclude and hit(exclude))


def read_inputs(path: Path) -> list[Input]:
    """The resources in one file; InputError (naming the file) when it is not readable FHIR."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"{path}: {exc.strerror or exc}") from None
    head = data.lstrip()[:1]
    try:
        if head == b"<":
            root = parse_xml_safely(data)
            if etree.QName(root).namespace != FHIR_NS:
                raise NotFhirError(f"{path}: XML, but not in the FHIR namespace; skipped")
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
        raise NotFhirError(f"{source}: JSON, but not a FHIR resource (no resourceType); skipped")
    # The validator walks recursively: deep documents are refused before it sees them.
    if json_depth(value) > MAX_JSON_DEPTH:
        raise InputError(f"{source}: nested deeper than {MAX_JSON_DEPTH} levels")
    return value
