"""Paths into a sliced item, for slice discriminators.

https://hl7.org/fhir/R4/profiling.html#discriminator
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def walk(item: Any, path: str) -> Any:
    current = item
    for name in path.split("."):
        if isinstance(current, list):
            current = current[0] if current else None
        if not isinstance(current, dict):
            return None
        current = current.get(name)
    return current


def type_at(
    item: Any, path: str, type_code: str, declared: list[str], is_complex: Callable[[str], bool]
) -> str | None:
    """The type of what stands at ``path`` in ``item``: a resource's own type, a choice
    element's by its JSON name (``contentString`` → string), else the one declared."""
    parent_path, _, last = path.rpartition(".")
    parent = item if path == "$this" or not parent_path else walk(item, parent_path)
    if isinstance(parent, list):
        parent = parent[0] if parent else None
    named = parent.get(last) if isinstance(parent, dict) else None
    value = parent if path == "$this" else named
    if isinstance(value, dict) and isinstance(value.get("resourceType"), str):
        return str(value["resourceType"])
    if path == "$this":
        return type_code
    for key in parent if isinstance(parent, dict) else {}:
        suffix = str(key)[len(last) :]
        if str(key).startswith(last) and suffix[:1].isupper():
            return suffix if is_complex(suffix) else suffix[:1].lower() + suffix[1:]
    return declared[0] if value is not None and len(declared) == 1 else None
