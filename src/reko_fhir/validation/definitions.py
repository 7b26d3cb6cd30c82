"""The conformance resources a validator knows: R4 core offline, plus loaded IG folders.

The R4 core extract (``data/r4-core.json.gz``, built by ``scripts/build_r4_core.py``) is read once
per process. Folders of JSON or XML conformance resources (``profiles/``, ``--ig DIR``) are added on
top; a later definition of the same canonical URL replaces an earlier one.
https://hl7.org/fhir/R4/structuredefinition.html, https://hl7.org/fhir/R4/valueset.html
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Any

from lxml import etree

from reko_fhir.xmlsafe import UnsafeXmlError

Resource = dict[str, Any]
CONFORMANCE_TYPES = ("StructureDefinition", "ValueSet", "CodeSystem")
FHIR_NS = "http://hl7.org/fhir"
CORE_BASE = "http://hl7.org/fhir/StructureDefinition/"


class DefinitionError(ValueError):
    """A conformance resource could not be read; names the file."""


@cache
def _core() -> dict[str, list[Resource]]:
    raw = files("reko_fhir.validation").joinpath("data/r4-core.json.gz").read_bytes()
    data: dict[str, list[Resource]] = json.loads(gzip.decompress(raw))
    return data


@dataclass(slots=True)
class Definitions:
    """Conformance resources by canonical URL (``url`` or ``url|version``)."""

    structures: dict[str, Resource] = field(default_factory=dict)
    value_sets: dict[str, Resource] = field(default_factory=dict)
    code_systems: dict[str, Resource] = field(default_factory=dict)

    @classmethod
    def core(cls) -> Definitions:
        """The FHIR R4 core: every base resource and data type, value set and code system."""
        found = cls()
        for kind in CONFORMANCE_TYPES:
            found.add_all(_core()[kind])
        return found

    def add(self, resource: Resource) -> None:
        table = {
            "StructureDefinition": self.structures,
            "ValueSet": self.value_sets,
            "CodeSystem": self.code_systems,
        }.get(str(resource.get("resourceType")))
        url = resource.get("url")
        if table is None or not isinstance(url, str):
            return
        table[url] = resource
        if version := resource.get("version"):
            table[f"{url}|{version}"] = resource

    def add_all(self, resources: Iterable[Resource]) -> None:
        for resource in resources:
            self.add(resource)

    def add_folder(self, folder: Path) -> int:
        """Every JSON/XML conformance resource below ``folder`` (Bundles unpacked); the count."""
        added = 0
        for path in sorted(folder.rglob("*")):
            if path.suffix not in (".json", ".xml") or path.name == "package.json":
                continue
            for resource in read_conformance_file(path):
                self.add(resource)
                added += 1
        return added

    def structure(self, url: str) -> Resource | None:
        return self.structures.get(url)

    def derives(self, kind: str, base: str) -> bool:
        """``kind`` is ``base`` or derives from it, following baseDefinition through the core
        (at most ten steps)."""
        seen = 0
        url: str | None = CORE_BASE + kind
        while url and seen < 10:
            structure = self.structure(url)
            if structure is None:
                return False
            if structure.get("type") == base:
                return True
            url, seen = structure.get("baseDefinition"), seen + 1
        return False

    def base_of_type(self, type_name: str) -> Resource | None:
        """The core StructureDefinition of a resource or data type (``Identifier``, ``Patient``)."""
        return self.structures.get(CORE_BASE + type_name)


def read_conformance_file(path: Path) -> list[Resource]:
    """The conformance resources in one file: a resource, or a Bundle of them."""
    data = path.read_bytes().removeprefix(b"\xef\xbb\xbf")  # a UTF-8 byte order mark
    try:
        doc = _xml_to_json(data) if data.lstrip()[:1] == b"<" else json.loads(data)
    except (ValueError, UnsafeXmlError, etree.XMLSyntaxError) as exc:
        raise DefinitionError(f"{path}: not a readable FHIR resource: {exc}") from None
    if not isinstance(doc, dict):
        return []
    if doc.get("resourceType") == "Bundle":
        entries = doc.get("entry") or []
        resources = [e.get("resource") for e in entries if isinstance(e, dict)]
        return [
            r
            for r in resources
            if isinstance(r, dict) and r.get("resourceType") in CONFORMANCE_TYPES
        ]
    return [doc] if doc.get("resourceType") in CONFORMANCE_TYPES else []


def _xml_to_json(data: bytes) -> Resource:
    """FHIR XML → FHIR JSON through the definition-driven reader (it needs the core loaded)."""
    from reko_fhir.validation.xmljson import core_reader  # noqa: PLC0415 - it imports this module

    return core_reader().read(data)
