"""Readers for journal exports: JSON (JMESPath), XML (XPath over lxml) and CSV (columns).

Each reader turns the export into :class:`Node` objects and answers two questions the engine
asks: which records does a selector pick under a node, and which text values does a path give.
The engine never sees the format itself, which is why a new journal system needs only a new
mapping file.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import jmespath
from jmespath.exceptions import JMESPathError
from lxml import etree

from reko_fhir.mapping.journal.issues import MappingSpecError
from reko_fhir.mapping.journal.spec import MappingSpec
from reko_fhir.xmlsafe import UnsafeXmlError, parse_xml_safely


class ExportSyntaxError(ValueError):
    """The export cannot be read at all (malformed JSON/XML/CSV); ``where`` locates it."""

    def __init__(self, where: str, message: str) -> None:
        super().__init__(f"{where}: {message}")
        self.where = where
        self.message = message


@dataclass(frozen=True, slots=True)
class Node:
    """A record of the export: ``label`` locates it for people (``row 7``, ``line 34 <X>``)."""

    label: str
    data: Any


class ExportReader(Protocol):
    def root(self) -> Node: ...
    def select(self, node: Node, selector: str) -> list[Node]: ...
    def values(self, node: Node, path: str) -> list[str]: ...


def open_export(spec: MappingSpec, data: bytes) -> ExportReader:
    """Parse ``data`` with the reader the mapping names."""
    if spec.reader == "json":
        return JsonExport(data)
    if spec.reader == "xml":
        return XmlExport(data, spec.options.get("namespaces", {}))
    return CsvExport(data, spec.options)


def _text(value: object) -> str | None:
    if value is None or isinstance(value, dict | list):
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value).strip()
    return text or None


class JsonExport:
    """A JSON export; selectors and paths are JMESPath expressions (https://jmespath.org)."""

    def __init__(self, data: bytes) -> None:
        try:
            self._doc = json.loads(data.decode("utf-8-sig"))
        except UnicodeDecodeError as exc:
            raise ExportSyntaxError(f"byte {exc.start}", "not UTF-8") from None
        except json.JSONDecodeError as exc:
            raise ExportSyntaxError(f"line {exc.lineno} column {exc.colno}", exc.msg) from None
        except RecursionError:
            raise ExportSyntaxError("document", "nested too deeply") from None
        self._compiled: dict[str, Any] = {}

    def _search(self, expression: str, data: object) -> object:
        if expression not in self._compiled:
            try:
                self._compiled[expression] = jmespath.compile(expression)
            except JMESPathError as exc:
                raise MappingSpecError(f"bad JMESPath '{expression}': {exc}") from None
        return self._compiled[expression].search(data)

    def root(self) -> Node:
        return Node("document", self._doc)

    def select(self, node: Node, selector: str) -> list[Node]:
        if not selector:
            return [node]
        found = self._search(selector, node.data)
        if found is None:
            return []
        items = found if isinstance(found, list) else [found]
        base = "" if node.label == "document" else node.label + "."
        name = selector.replace("[*]", "").replace("[]", "")
        if not isinstance(found, list):
            return [Node(f"{base}{name}", found)]
        return [Node(f"{base}{name}[{i}]", item) for i, item in enumerate(items)]

    def values(self, node: Node, path: str) -> list[str]:
        found = self._search(path, node.data)
        items = found if isinstance(found, list) else [found]
        return [t for t in (_text(i) for i in items) if t is not None]


class XmlExport:
    """An XML export; selectors and paths are XPath 1.0 with the mapping's namespace prefixes."""

    def __init__(self, data: bytes, namespaces: dict[str, str]) -> None:
        try:
            self._root = parse_xml_safely(data)
        except UnsafeXmlError as exc:
            raise ExportSyntaxError("document", str(exc)) from None
        except etree.XMLSyntaxError as exc:
            line, column = exc.position
            raise ExportSyntaxError(
                f"line {line} column {column}", exc.msg or "malformed XML"
            ) from None
        self._ns = {str(k): str(v) for k, v in namespaces.items()}
        self._compiled: dict[str, etree.XPath] = {}

    def _xpath(self, expression: str, element: Any) -> Any:
        if expression not in self._compiled:
            try:
                self._compiled[expression] = etree.XPath(expression, namespaces=self._ns)
            except etree.XPathSyntaxError as exc:
                raise MappingSpecError(f"bad XPath '{expression}': {exc}") from None
        try:
            return self._compiled[expression](element)
        except etree.XPathEvalError as exc:
            raise MappingSpecError(f"XPath '{expression}' fails: {exc}") from None

    def root(self) -> Node:
        return Node(self._label(self._root), self._root)

    @staticmethod
    def _label(element: Any) -> str:
        return f"line {element.sourceline} <{etree.QName(element).localname}>"

    def select(self, node: Node, selector: str) -> list[Node]:
        if not selector:
            return [node]
        found = self._xpath(selector, node.data)
        items = found if isinstance(found, list) else [found]
        return [Node(self._label(e), e) for e in items if isinstance(e, etree._Element)]

    def values(self, node: Node, path: str) -> list[str]:
        found = self._xpath(path, node.data)
        items = found if isinstance(found, list) else [found]
        out: list[str] = []
        for item in items:
            text = (
                _text("".join(str(t) for t in item.itertext()))
                if isinstance(item, etree._Element)
                else _text(item)
            )
            if text is not None:
                out.append(text)
        return out


class CsvExport:
    """A CSV export, one row per journal record.

    The case selector names the column to group rows into cases by (empty: one case); a record
    selector is ``column=value`` (``*`` or empty: every row). Paths are column names.
    """

    def __init__(self, data: bytes, options: dict[str, Any]) -> None:
        try:
            text = data.decode(str(options.get("encoding", "utf-8-sig")))
        except (UnicodeDecodeError, LookupError) as exc:
            raise ExportSyntaxError("document", f"cannot decode: {exc}") from None
        delimiter = str(options.get("delimiter", ","))
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
        rows: list[list[str]] = []
        try:
            rows.extend(reader)
        except csv.Error as exc:
            # The parser notices a stray quote only where it gives up; name where the row began.
            raise ExportSyntaxError(
                f"row {len(rows) + 1} (line {reader.line_num})",
                f"{exc}; is a quote in this row left open?",
            ) from None
        if not rows:
            raise ExportSyntaxError("row 1", "the file is empty; a header row is expected")
        self.header = [h.strip() for h in rows[0]]
        self._rows: list[Node] = []
        for number, row in enumerate(rows[1:], start=2):
            if not any(cell.strip() for cell in row):
                continue
            if len(row) != len(self.header):
                raise ExportSyntaxError(
                    f"row {number}", f"has {len(row)} cells, the header has {len(self.header)}"
                )
            self._rows.append(Node(f"row {number}", dict(zip(self.header, row, strict=True))))

    def root(self) -> Node:
        return Node("document", self._rows)

    def _rows_of(self, node: Node) -> Iterator[Node]:
        if isinstance(node.data, list):
            yield from node.data
        else:
            yield node

    def _need_column(self, column: str) -> None:
        if column not in self.header:
            raise ExportSyntaxError("row 1", f"the header has no column '{column}'")

    def select(self, node: Node, selector: str) -> list[Node]:
        rows = list(self._rows_of(node))
        if selector.startswith("group-by "):
            column = selector.removeprefix("group-by ").strip()
            self._need_column(column)
            groups: dict[str, list[Node]] = {}
            for row in rows:
                groups.setdefault(row.data[column].strip(), []).append(row)
            return [Node(f"{column} {key}", group) for key, group in groups.items()]
        if selector in ("", "*"):
            return rows
        column, _, wanted = selector.partition("=")
        self._need_column(column.strip())
        return [r for r in rows if r.data[column.strip()].strip() == wanted.strip()]

    def values(self, node: Node, path: str) -> list[str]:
        self._need_column(path)
        seen: list[str] = []
        for row in self._rows_of(node):
            text = _text(row.data[path])
            if text is not None and text not in seen:
                seen.append(text)
        return seen
