"""Binding checks against the ValueSets and CodeSystems a validator has loaded.

Expansions are computed once per value set from ``compose``: concept lists, whole code systems,
imported value sets, ``is-a``/``descendent-of``/``=`` (concept) filters on code systems that are
loaded, and ``exclude`` of each of those. What cannot be expanded here (a code system or value
set not loaded, another filter) leaves the expansion *incomplete*: a code found in the part that
is known is decided; one not found is **not checked**, and said so (never silently passed). A
code system the validator does not know gives a warning, never an error.
https://hl7.org/fhir/R4/terminologies.html#binding, https://hl7.org/fhir/R4/valueset.html#compose
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from reko_fhir.outcomes import IssueCode, IssueSeverity
from reko_fhir.validation.definitions import Definitions
from reko_fhir.validation.issue_kinds import UNDECIDED_MARK

Json = dict[str, Any]
Codes = set[tuple[str, str]]


@dataclass(frozen=True, slots=True)
class Expansion:
    codes: frozenset[tuple[str, str]]
    unknown_systems: frozenset[str]
    # What could not be expanded, by code system ("" when any system may be concerned: an
    # imported value set or an exclusion that cannot be expanded), for undecided checks.
    gaps: tuple[tuple[str, str], ...] = ()
    # The codes whatever their system: a bare code (a ``code`` element) is looked up here.
    bare: frozenset[str] = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "bare", frozenset(code for _, code in self.codes))

    @property
    def complete(self) -> bool:
        return not self.gaps

    def gap_for(self, system: str | None) -> str | None:
        """Why a code of ``system`` that is not among ``codes`` may still be a member."""
        for where, why in self.gaps:
            if where in ("", system) or system is None:
                return why
        return None


def _concepts(concepts: list[Json]) -> list[str]:
    out = []
    for concept in concepts:
        out.append(concept["code"])
        out.extend(_concepts(concept.get("concept", [])))
    return out


def _below(concepts: list[Json], code: str, found: bool = False) -> list[str]:
    """Codes of the concept ``code`` and all beneath it in the nesting (its is-a tree)."""
    out: list[str] = []
    for concept in concepts:
        here = found or concept.get("code") == code
        if here:
            out.append(concept["code"])
        out.extend(_below(concept.get("concept", []), code, here))
    return out


class Terminology:
    def __init__(self, definitions: Definitions) -> None:
        self.definitions = definitions
        self._expansions: dict[str, Expansion | None] = {}

    def expand(self, url: str, depth: int = 0) -> Expansion | None:
        """The codes of value set ``url``; None when it is unknown or imports itself."""
        if url in self._expansions:
            return self._expansions[url]
        value_set = self.definitions.value_sets.get(url)
        self._expansions[url] = None
        if value_set is None or depth > 10:
            return None
        gaps: list[tuple[str, str]] = []
        unknown: set[str] = set()
        compose = value_set.get("compose") or {}
        codes: Codes = set()
        for include in compose.get("include", []):
            codes |= self._part(include, depth, gaps, unknown)
        for exclude in compose.get("exclude", []):
            # An exclusion that cannot be expanded could remove any code: nothing is certain.
            before = len(gaps)
            codes -= self._part(exclude, depth, gaps, unknown)
            if len(gaps) > before:
                gaps.append(("", "an exclusion that cannot be expanded"))
        expansion = Expansion(frozenset(codes), frozenset(unknown), tuple(gaps))
        self._expansions[url] = expansion
        return expansion

    def _part(
        self, part: Json, depth: int, gaps: list[tuple[str, str]], unknown: set[str]
    ) -> Codes:
        """The codes of one include or exclude: its systems' concepts ∩ its value sets."""
        chosen: Codes | None = None
        for imported in part.get("valueSet", []):
            sub = self.expand(imported, depth + 1)
            if sub is None:
                gaps.append(("", f"value set {imported} is not loaded"))
            elif not sub.complete:
                gaps += sub.gaps
            if sub is not None:
                chosen = set(sub.codes) if chosen is None else chosen & sub.codes
                unknown |= sub.unknown_systems
        system = part.get("system")
        if not system:
            return chosen or set()
        if part.get("concept"):
            own = {(system, c["code"]) for c in part["concept"]}
        else:
            code_system = self.definitions.code_systems.get(system)
            if code_system is None or code_system.get("content") not in (None, "complete"):
                unknown.add(system)
                gaps.append((system, f"code system {system} is not loaded"))
                return chosen or set()
            own = self._filtered(system, code_system, part.get("filter") or [], gaps)
        return own if chosen is None else own & chosen

    @staticmethod
    def _filtered(
        system: str, code_system: Json, filters: list[Json], gaps: list[tuple[str, str]]
    ) -> Codes:
        concepts = code_system.get("concept", [])
        codes = set(_concepts(concepts))
        for rule in filters:
            op, value = rule.get("op"), str(rule.get("value"))
            if rule.get("property") != "concept" or op not in ("is-a", "descendent-of", "="):
                gaps.append((system, f"filter {rule.get('property')} {op} {value} on {system}"))
                continue
            if op == "=":
                codes &= {value}
            else:
                below = set(_below(concepts, value))
                codes &= below - ({value} if op == "descendent-of" else set())
        return {(system, code) for code in codes}

    def member(self, value: Any, url: str) -> bool | None:
        """Whether ``value`` is in value set ``url``; None when this validator cannot tell
        (FHIRPath ``memberOf()``)."""
        codings = _any_codings(value)
        expansion = self.expand(url.split("|", maxsplit=1)[0])
        if not codings or expansion is None:
            return None
        for system, code in codings:
            if (system, code) in expansion.codes or (system is None and code in expansion.bare):
                return True
        return None if any(expansion.gap_for(s) for s, _ in codings) else False

    def check(
        self, url: str, type_code: str, value: Any, strength: str
    ) -> list[tuple[IssueSeverity, IssueCode, str]]:
        """Problems of ``value`` (code, Coding, CodeableConcept…) against value set ``url``."""
        codings = _codings(type_code, value)
        if not codings:
            return []
        expansion = self.expand(url.split("|", maxsplit=1)[0])
        if expansion is None:
            return [_undecided(url, strength, "the value set is not loaded")]
        for system, code in codings:
            if system is None and code in expansion.bare:
                return []
            if (system, code) in expansion.codes:
                return []
        systems = {s for s, _ in codings if s}
        if not systems and expansion.unknown_systems:
            # A bare code (a ``code`` element, e.g. a MIME type of urn:ietf:bcp:13) may be one
            # of a system not known here: not checked, as a Coding of that system would not be.
            return []
        if systems and systems <= expansion.unknown_systems:
            # A warning, louder than other undecided checks: the sender may have mistyped it.
            why = f"code system {', '.join(sorted(systems))} is not known here"
            severity, code, message = _undecided(url, strength, why)
            return [(IssueSeverity.WARNING, code, message)]
        shown = ", ".join(f"{s}#{c}" if s else c for s, c in codings)
        gaps = [g for g in (expansion.gap_for(s) for s, _ in codings) if g]
        if gaps:
            why = f"{shown} is not in the part that can be expanded here ({gaps[0]})"
            return [_undecided(url, strength, why)]
        severity = IssueSeverity.ERROR if strength == "required" else IssueSeverity.WARNING
        message = f"{shown} is not in the value set {url} ({strength} binding)"
        return [(severity, IssueCode.CODE_INVALID, message)]


def _any_codings(value: Any) -> list[tuple[str | None, str]] | None:
    """The codings of a value whose type FHIRPath does not say: a code, Coding, CodeableConcept
    or Quantity, told apart by its shape."""
    if isinstance(value, str):
        return _codings("code", value)
    if isinstance(value, dict) and "coding" in value:
        return _codings("CodeableConcept", value)
    if isinstance(value, dict):
        return _codings("Coding", value)
    return None


def _undecided(url: str, strength: str, why: str) -> tuple[IssueSeverity, IssueCode, str]:
    return (
        IssueSeverity.INFORMATION,
        IssueCode.NOT_SUPPORTED,
        f"{url} ({strength} binding): {UNDECIDED_MARK}: {why}",
    )


def _codings(type_code: str, value: Any) -> list[tuple[str | None, str]] | None:
    if type_code in ("code", "string", "uri") and isinstance(value, str):
        return [(None, value)]
    if not isinstance(value, dict):
        return None
    if type_code in {"Coding", "Quantity"}:
        return _coding(value)
    if type_code == "CodeableConcept":
        codings = value.get("coding")
        items = codings if isinstance(codings, list) else []
        return [pair for coding in items for pair in _coding(coding)]
    return None


def _coding(value: Any) -> list[tuple[str | None, str]]:
    """A Coding's (or Quantity's) (system, code); none without a code, or when the code or
    system has the wrong JSON type: the profile walk says so at that element, and a binding
    does not look into it."""
    if not isinstance(value, dict):
        return []
    system, code = value.get("system"), value.get("code")
    if not isinstance(code, str) or not (system is None or isinstance(system, str)):
        return []
    return [(system, code)]
