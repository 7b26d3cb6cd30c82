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
from pydantic_core import from_json

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
    size: int = 0  # bytes read for it (the progress bar)
    text: bytes | None = None  # the JSON text it was read from (ValidationService.validate)


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
    return list(iter_inputs(path))


def iter_inputs(path: Path) -> Iterator[Input]:
    """The resources in one file, one at a time: NDJSON is read line by line, so memory does not
    grow with the file. NDJSON is a first line that is a whole JSON object with more after it;
    anything else is read whole (a pretty-printed JSON resource or Bundle, XML)."""
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise InputError(f"{path}: {exc.strerror or exc}") from None
    with handle:
        first = handle.readline()
        single = _single_line(first, path)
        if single is None:
            yield from _whole(first + handle.read(), path)
            return
        rest = handle.readline()
        number = 2
        while rest and not rest.strip():
            rest, number = handle.readline(), number + 1
        if not rest:
            yield Input(str(path), _object(single, str(path)), len(first), first)
            return
        yield Input(
            f"{path}:1", _line_object(single, f"{path}:1", _brackets(first)), len(first), first
        )
        name = str(path)
        while rest:
            if not rest.isspace():  # (strip() would copy the line)
                source = f"{name}:{number}"
                resource = _line_object(_parse(rest, source), source, _brackets(rest))
                yield Input(source, resource, len(rest), rest)
            rest, number = handle.readline(), number + 1


def _single_line(line: bytes, path: Path) -> Any:
    """The JSON object on ``line`` when it holds a whole one, else None."""
    if not line.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"{"):
        return None
    try:
        value = json.loads(line.decode("utf-8-sig"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    except RecursionError:
        raise InputError(f"{path}: nested deeper than {MAX_JSON_DEPTH} levels") from None
    return value if isinstance(value, dict) else None


def _parse(line: bytes, source: str) -> Any:
    # pydantic-core's JSON reader (already here for the models) reads a record ~4x faster than
    # json; anything it refuses (a BOM, a lone surrogate, bad JSON) is read by json as before,
    # with json's error. Where both read a line, they give the same value.
    try:
        return from_json(line)
    except ValueError:
        pass
    try:
        return json.loads(line.decode("utf-8-sig"))
    except RecursionError:
        raise InputError(f"{source}: nested deeper than {MAX_JSON_DEPTH} levels") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{source}: not readable as FHIR JSON, NDJSON or XML: {exc}") from None


def _brackets(line: bytes) -> int:
    return line.count(b"{") + line.count(b"[")


def _line_object(value: Any, source: str, brackets: int | None = None) -> dict[str, Any]:
    """A record of NDJSON: not being a resource is an error there, not a file to skip."""
    try:
        return _object(value, source, brackets)
    except NotFhirError as exc:
        raise InputError(str(exc).removesuffix("; skipped")) from None


def _whole(data: bytes, path: Path) -> list[Input]:
    data = data.removeprefix(b"\xef\xbb\xbf")  # a UTF-8 byte order mark
    head = data.lstrip()[:1]
    try:
        if head == b"<":
            root = parse_xml_safely(data)
            if etree.QName(root).namespace != FHIR_NS:
                raise NotFhirError(f"{path}: XML, but not in the FHIR namespace; skipped")
            return [Input(str(path), core_reader().read(data), len(data))]
        text = data.decode("utf-8-sig")
        try:
            return [Input(str(path), _object(json.loads(text), str(path)), len(data), data)]
        except json.JSONDecodeError:
            lines = [(n, line) for n, line in enumerate(text.splitlines(), 1) if line.strip()]
            if len(lines) < 2:
                raise
            return [
                Input(f"{path}:{n}", _line_object(json.loads(line), f"{path}:{n}"), len(line))
                for n, line in lines
            ]
    except RecursionError:
        raise InputError(f"{path}: nested deeper than {MAX_JSON_DEPTH} levels") from None
    except (json.JSONDecodeError, UnicodeDecodeError, UnsafeXmlError, etree.XMLSyntaxError) as exc:
        raise InputError(f"{path}: not readable as FHIR JSON, NDJSON or XML: {exc}") from None


def _object(value: Any, source: str, brackets: int | None = None) -> dict[str, Any]:
    """``brackets``: how many ``{`` and ``[`` its text holds (strings' too), when known."""
    if not isinstance(value, dict) or not isinstance(value.get("resourceType"), str):
        raise NotFhirError(f"{source}: JSON, but not a FHIR resource (no resourceType); skipped")
    # The validator walks recursively: deep documents are refused before it sees them. Each
    # level opens a bracket, so a text with few brackets cannot be deep: no walk needed.
    few = brackets is not None and brackets <= MAX_JSON_DEPTH
    if not few and json_depth(value) > MAX_JSON_DEPTH:
        raise InputError(f"{source}: nested deeper than {MAX_JSON_DEPTH} levels")
    return value
