"""Binding checks against the ValueSets and CodeSystems a validator has loaded.

Expansions are computed once per value set from ``compose`` (concept lists, whole code systems,
imported value sets); filters cannot be expanded here, so such value sets are not checked. A
code system the validator does not know gives a warning, never an error.
https://hl7.org/fhir/R4/terminologies.html#binding
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from reko_fhir.outcomes import IssueSeverity
from reko_fhir.validation.definitions import Definitions

Json = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Expansion:
    codes: frozenset[tuple[str, str]]
    unknown_systems: frozenset[str]
    complete: bool


def _concepts(concepts: list[Json]) -> list[str]:
    out = []
    for concept in concepts:
        out.append(concept["code"])
        out.extend(_concepts(concept.get("concept", [])))
    return out


class Terminology:
    def __init__(self, definitions: Definitions) -> None:
        self.definitions = definitions
        self._expansions: dict[str, Expansion | None] = {}

    def expand(self, url: str, depth: int = 0) -> Expansion | None:
        """The codes of value set ``url``; None when it is unknown or cannot be expanded."""
        if url in self._expansions:
            return self._expansions[url]
        value_set = self.definitions.value_sets.get(url)
        self._expansions[url] = None
        if value_set is None or depth > 10:
            return None
        codes: set[tuple[str, str]] = set()
        unknown: set[str] = set()
        complete = True
        compose = value_set.get("compose") or {}
        for include in compose.get("include", []):
            if include.get("filter"):
                complete = False
                continue
            for imported in include.get("valueSet", []):
                sub = self.expand(imported, depth + 1)
                if sub is None:
                    complete = False
                else:
                    codes |= sub.codes
                    unknown |= sub.unknown_systems
            system = include.get("system")
            if not system:
                continue
            if include.get("concept"):
                codes |= {(system, c["code"]) for c in include["concept"]}
                continue
            code_system = self.definitions.code_systems.get(system)
            if code_system is None or code_system.get("content") not in (None, "complete"):
                unknown.add(system)
                continue
            codes |= {(system, code) for code in _concepts(code_system.get("concept", []))}
        excluded = {
            (e.get("system"), c["code"])
            for e in compose.get("exclude", [])
            for c in e.get("concept", [])
        }
        expansion = Expansion(frozenset(codes - excluded), frozenset(unknown), complete)
        self._expansions[url] = expansion
        return expansion

    def check(
        self, url: str, type_code: str, value: Any, strength: str
    ) -> list[tuple[IssueSeverity, str]]:
        """Problems of ``value`` (code, Coding, CodeableConcept…) against value set ``url``."""
        expansion = self.expand(url.split("|", maxsplit=1)[0])
        if expansion is None or not expansion.complete:
            return []
        codings = _codings(type_code, value)
        if codings is None:
            return []
        if not codings:
            return []
        severity = IssueSeverity.ERROR if strength == "required" else IssueSeverity.WARNING
        for system, code in codings:
            if system is None and any(c == code for _, c in expansion.codes):
                return []
            if (system, code) in expansion.codes:
                return []
        systems = {s for s, _ in codings if s}
        if not systems and expansion.unknown_systems:
            # A bare code (a ``code`` element, e.g. a MIME type of urn:ietf:bcp:13) may be one
            # of a system not known here: not checked, as a Coding of that system would not be.
            return []
        if systems and systems <= expansion.unknown_systems:
            return [
                (
                    IssueSeverity.WARNING,
                    f"code system {', '.join(sorted(systems))} is not known here: code not checked",
                )
            ]
        shown = ", ".join(f"{s}#{c}" if s else c for s, c in codings)
        return [(severity, f"{shown} is not in the value set {url} ({strength} binding)")]


def _codings(type_code: str, value: Any) -> list[tuple[str | None, str]] | None:
    if type_code in ("code", "string", "uri") and isinstance(value, str):
        return [(None, value)]
    if type_code == "Coding" and isinstance(value, dict):
        return [(value.get("system"), value["code"])] if "code" in value else []
    if type_code == "CodeableConcept" and isinstance(value, dict):
        return [(c.get("system"), c["code"]) for c in value.get("coding", []) if "code" in c]
    if type_code == "Quantity" and isinstance(value, dict) and "code" in value:
        return [(value.get("system"), value["code"])]
    return None
