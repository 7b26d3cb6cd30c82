"""Fields of an export that hold a diagnosis: never mapped, but never dropped silently either.

Coordination is documented without diagnosis (profile contract 2, point 4; seed 001). A journal
export may still carry one (``diagnosis``, ``icd10``, ``<Diagnos>``, a ``diagnoskod`` column);
the engine names each such field once per case as a warning, so a person knows what was left
out. Only the field's name is reported, never its value.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from lxml import etree

from reko_fhir.mapping.journal.readers import Node

_DIAGNOSIS = re.compile(r"diagnos|icd", re.IGNORECASE)


def _has_value(value: Any) -> bool:
    if isinstance(value, str):
        return bool(value.strip())
    if isinstance(value, list | dict):
        return bool(value)
    return value is not None


def _json(data: Any, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(data, dict):
        for key, value in data.items():
            if _DIAGNOSIS.search(str(key)) and _has_value(value):
                yield path or "document", str(key)
            else:
                yield from _json(value, f"{path}.{key}" if path else str(key))
    elif isinstance(data, list):
        for i, item in enumerate(data):
            yield from _json(item, f"{path}[{i}]")


def _xml(element: Any) -> Iterator[tuple[str, str]]:
    for node in element.iter():
        if not isinstance(node.tag, str):
            continue  # comments, processing instructions
        label = f"line {node.sourceline} <{etree.QName(node).localname}>"
        name = etree.QName(node).localname
        if _DIAGNOSIS.search(name) and ("".join(node.itertext()).strip() or len(node.attrib)):
            yield label, name
        for attribute, value in node.attrib.items():
            local = etree.QName(attribute).localname
            if _DIAGNOSIS.search(local) and value.strip():
                yield label, f"@{local}"


def _csv(rows: list[Node]) -> Iterator[tuple[str, str]]:
    for row in rows:
        for column, value in row.data.items():
            if _DIAGNOSIS.search(column) and value.strip():
                yield row.label, column


def diagnosis_fields(case: Node) -> list[tuple[str, str]]:
    """``(record label, field name)`` of each diagnosis-like field with a value, first
    occurrence per field name."""
    data = case.data
    if isinstance(data, etree._Element):
        found = _xml(data)
    elif isinstance(data, list) and all(isinstance(r, Node) for r in data):
        found = _csv(data)
    elif isinstance(data, Node):
        found = _csv([data])
    else:
        base = case.label if case.label != "document" else ""
        found = _json(data, base)
    seen: dict[str, str] = {}
    for label, name in found:
        seen.setdefault(name, label)
    return [(label, name) for name, label in seen.items()]
