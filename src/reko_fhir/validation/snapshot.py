"""Snapshot generation: a profile's differential applied to its base's snapshot.

https://hl7.org/fhir/R4/profiling.html#snapshot. The base snapshot is copied; each differential
element is found by its id (``Procedure.extension:externalActor.value[x]``), created when it does
not exist yet — a slice copies the element it slices, a path into a data type unrolls that type's
elements under its parent — and then constrained: cardinality, types, fixed and pattern values,
bindings and slicing replace the base's, constraints are added to them.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from reko_fhir.validation.definitions import Definitions

Element = dict[str, Any]

_REPLACED = (
    "min",
    "max",
    "type",
    "binding",
    "slicing",
    "sliceName",
    "short",
    "definition",
    "mustSupport",
    "maxLength",
    "isModifier",
    "sliceIsConstraining",
    "contentReference",
)
_REPLACED_PREFIXES = ("fixed", "pattern", "minValue", "maxValue", "defaultValue")


class SnapshotError(ValueError):
    """The differential cannot be applied; names the element."""


def split_id(element_id: str) -> list[str]:
    """``A.b:s.c`` → ``["A", "b:s", "c"]`` (a slice name may itself hold dots: ``b:s.x/y``)."""
    parts, current, in_slice = [], "", False
    for char in element_id:
        if char == "." and not in_slice:
            parts.append(current)
            current = ""
            continue
        if char == ":":
            in_slice = True
        current += char
    parts.append(current)
    # A slice name ends at the next dot that starts a child; slice names here hold no dots.
    out: list[str] = []
    for part in parts:
        name, sep, rest = part.partition(":")
        if sep and "." in rest:
            slice_name, _, tail = rest.partition(".")
            out.append(f"{name}:{slice_name}")
            out.extend(tail.split("."))
        else:
            out.append(part)
    return out


def _path_of(element_id: str) -> str:
    return ".".join(part.split(":")[0] for part in split_id(element_id))


def _derive_id(diff: Element, previous: list[str]) -> str:
    """Ids for old differentials that only give path + sliceName: slices stay in force below."""
    path = diff["path"].split(".")
    segments = []
    for index, name in enumerate(path):
        prefix = ".".join(path[: index + 1])
        match = next(
            (p for p in reversed(previous) if _path_of(p) == prefix and ":" in split_id(p)[-1]),
            None,
        )
        last = index == len(path) - 1
        if last and diff.get("sliceName"):
            segments.append(f"{name}:{diff['sliceName']}")
        elif not last and match is not None:
            segments.append(split_id(match)[-1])
        else:
            segments.append(name)
    return ".".join(segments)


class _Snapshot:
    def __init__(self, elements: list[Element], definitions: Definitions) -> None:
        self.elements = elements
        self.definitions = definitions

    def index(self, element_id: str) -> int | None:
        for i, element in enumerate(self.elements):
            if element.get("id") == element_id:
                return i
        return None

    def end_of_group(self, position: int) -> int:
        """The index after ``position``'s element, its children and its slices."""
        element_id = self.elements[position]["id"]
        end = position + 1
        while end < len(self.elements):
            other = self.elements[end]["id"]
            if other.startswith(element_id + ".") or other.startswith(element_id + ":"):
                end += 1
            else:
                break
        return end

    def ensure(self, element_id: str) -> int:
        found = self.index(element_id)
        if found is not None:
            return found
        parts = split_id(element_id)
        if len(parts) == 1:
            raise SnapshotError(f"'{element_id}' is not in the base")
        parent_id, last = ".".join(parts[:-1]), parts[-1]
        name, _, slice_name = last.partition(":")
        if slice_name:
            return self.add_slice(f"{parent_id}.{name}" if parent_id else name, slice_name)
        parent = self.ensure(parent_id)
        if not any(e["id"].startswith(parent_id + ".") for e in self.elements):
            self.unroll(parent)
        found = self.index(element_id)
        if found is None:
            found = self._choice_alias(parent_id, name)
        if found is None:
            raise SnapshotError(f"'{element_id}' is not an element of its parent's type")
        return found

    def _choice_alias(self, parent_id: str, name: str) -> int | None:
        """``Observation.valueQuantity`` names the ``value[x]`` element restricted to Quantity."""
        for i, element in enumerate(self.elements):
            eid = element["id"]
            if (
                eid.startswith(parent_id + ".")
                and eid.endswith("[x]")
                and eid.count(".") == parent_id.count(".") + 1
            ):
                stem = split_id(eid)[-1][:-3]
                if name.startswith(stem) and name[len(stem) :][:1].isupper():
                    return i
        return None

    def add_slice(self, sliced_id: str, slice_name: str) -> int:
        position = self.ensure(sliced_id)
        base = self.elements[position]
        group_end = self.end_of_group(position)
        new = copy.deepcopy(base)
        new.pop("slicing", None)
        new_id = f"{sliced_id}:{slice_name}"
        new["id"] = new_id
        new["sliceName"] = slice_name
        # The slice starts as a copy of the sliced element with its children (backbone elements
        # and data types already unrolled), not with the other slices.
        children = [
            copy.deepcopy(e)
            for e in self.elements[position + 1 : group_end]
            if e["id"].startswith(sliced_id + ".")
        ]
        for child in children:
            child["id"] = new_id + child["id"][len(sliced_id) :]
        # A choice slice like value[x]:valueQuantity keeps only that type.
        if sliced_id.endswith("[x]"):
            stem = split_id(sliced_id)[-1][:-3]
            wanted = slice_name[len(stem) :]
            types = [
                t for t in base.get("type", []) if t["code"][:1].upper() + t["code"][1:] == wanted
            ]
            if types:
                new["type"] = types
        self.elements[group_end:group_end] = [new, *children]
        return group_end

    def unroll(self, position: int) -> None:
        """Insert the child elements of ``position``'s data type under it."""
        parent = self.elements[position]
        source = self._children_source(parent)
        if source is None:
            return
        prefix_id, prefix_path, children = source
        insert_at = position + 1
        for child in children:
            new = copy.deepcopy(child)
            new["id"] = parent["id"] + new["id"][len(prefix_id) :]
            new["path"] = parent["path"] + new["path"][len(prefix_path) :]
            self.elements.insert(insert_at, new)
            insert_at += 1

    def _children_source(self, parent: Element) -> tuple[str, str, list[Element]] | None:
        reference = parent.get("contentReference")
        if reference:
            target_id = reference.removeprefix("#")
            start = self.index(target_id)
            if start is None:
                return None
            end = self.end_of_group(start)
            return target_id, self.elements[start]["path"], self.elements[start + 1 : end]
        types = parent.get("type") or []
        codes = {t["code"] for t in types}
        if not codes:
            raise SnapshotError(f"'{parent['id']}' has no type to take children from")
        # A choice of several types shares only what every element has: id and extension.
        code = codes.pop() if len(codes) == 1 else "Element"
        structure = self.definitions.base_of_type(code)
        if structure is None:
            raise SnapshotError(f"no definition of type '{code}' for '{parent['id']}'")
        elements = structure["snapshot"]["element"]
        return elements[0]["id"], elements[0]["path"], elements[1:]


def _merge(target: Element, diff: Element) -> None:
    for key, value in diff.items():
        if key in ("id", "path"):
            continue
        if key == "constraint":
            known = {c.get("key") for c in target.get("constraint", [])}
            target["constraint"] = target.get("constraint", []) + [
                c for c in value if c.get("key") not in known
            ]
        elif key == "extension":  # the element's own (minLength …): the differential's win
            urls = {e.get("url") for e in value if isinstance(e, dict)}
            kept = [e for e in target.get("extension", []) if e.get("url") not in urls]
            target["extension"] = kept + copy.deepcopy(value)
        elif key in _REPLACED or key.startswith(_REPLACED_PREFIXES):
            if key.startswith(("fixed", "pattern")):
                for old in [k for k in target if k.startswith(("fixed", "pattern"))]:
                    del target[old]
            target[key] = copy.deepcopy(value)


def generate_snapshot(profile: Element, definitions: Definitions) -> list[Element]:
    """The snapshot elements of ``profile``, from its ``baseDefinition`` and ``differential``."""
    base_url = profile.get("baseDefinition")
    base = definitions.structure(base_url) if isinstance(base_url, str) else None
    if base is None:
        raise SnapshotError(f"unknown base definition '{base_url}'")
    if "snapshot" not in base:
        base = {**base, "snapshot": {"element": generate_snapshot(base, definitions)}}
    snapshot = _Snapshot(copy.deepcopy(base["snapshot"]["element"]), definitions)
    seen: list[str] = []
    for diff in profile.get("differential", {}).get("element", []):
        element_id = diff.get("id") or _derive_id(diff, seen)
        if "path" in diff and _path_of(element_id) != diff["path"]:
            element_id = _derive_id(diff, seen)  # the path is authoritative when the two disagree
        element_id = re.sub(r"\s+", "", element_id)
        seen.append(element_id)
        position = snapshot.ensure(element_id)
        _merge(snapshot.elements[position], diff)
    return snapshot.elements


def with_snapshot(profile: Element, definitions: Definitions) -> Element:
    """``profile`` with a generated snapshot (kept as is when it already has one)."""
    if "snapshot" in profile:
        return profile
    return {**profile, "snapshot": {"element": generate_snapshot(profile, definitions)}}
