"""Literal references inside a resource: finding them and renaming them.

https://hl7.org/fhir/R4/references.html — a literal reference is ``Type/id``; a logical one
carries ``identifier`` instead. The REST layer finds references to include; delivery renames
them to a target's ids and back.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def literal_references(node: Any) -> set[str]:
    """Every relative ``Type/id`` reference inside ``node``."""
    found: set[str] = set()
    if isinstance(node, dict):
        ref = node.get("reference")
        if isinstance(ref, str) and ref.count("/") == 1 and ref[:1].isupper():
            found.add(ref)
        for value in node.values():
            found |= literal_references(value)
    elif isinstance(node, list):
        for item in node:
            found |= literal_references(item)
    return found


def rename_references(
    node: Any, names: Mapping[str, str], logical: Mapping[str, Any] | None = None
) -> Any:
    """``node`` with each reference in ``names`` renamed, and each in ``logical`` replaced by
    a logical reference (``type`` + ``identifier``, display kept)."""
    if isinstance(node, dict):
        ref = node.get("reference")
        if logical and isinstance(ref, str) and ref in logical:
            rest = {k: v for k, v in node.items() if k != "reference"}
            return {**rest, "type": ref.split("/", 1)[0], "identifier": logical[ref]}
        return {
            k: names.get(v, v)
            if k == "reference" and isinstance(v, str)
            else rename_references(v, names, logical)
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [rename_references(v, names, logical) for v in node]
    return node


def display_only(node: Any, refs: set[str]) -> Any:
    """``node`` with each reference in ``refs`` reduced to its ``type`` and ``display``: for a
    receiver that cannot resolve it and no identifier to name it by (a Reference may carry a
    display alone, https://hl7.org/fhir/R4/references.html#Reference)."""
    if not refs:
        return node
    if isinstance(node, dict):
        ref = node.get("reference")
        if isinstance(ref, str) and ref in refs:
            rest = {k: v for k, v in node.items() if k != "reference"}
            return {"type": ref.split("/", 1)[0], **rest}
        return {k: display_only(v, refs) for k, v in node.items()}
    if isinstance(node, list):
        return [display_only(v, refs) for v in node]
    return node
