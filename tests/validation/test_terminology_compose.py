"""ValueSet membership from ``compose``: filters on local code systems, exclusions, imports, and
an undecided check (never a silent pass) where the value set cannot be expanded here."""

from __future__ import annotations

from typing import Any

import pytest

from reko_fhir.outcomes import IssueCode, IssueSeverity
from reko_fhir.validation.definitions import Definitions
from reko_fhir.validation.terminology import Terminology

CS = "http://example.org/cs"
CODE_SYSTEM = {
    "resourceType": "CodeSystem",
    "url": CS,
    "content": "complete",
    "concept": [
        {"code": "animal", "concept": [{"code": "dog", "concept": [{"code": "puppy"}]}]},
        {"code": "plant"},
    ],
}


def value_set(name: str, compose: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "ValueSet", "url": f"http://example.org/vs/{name}", "compose": compose}


def terminology() -> Terminology:
    definitions = Definitions()
    definitions.add(CODE_SYSTEM)
    for vs in (
        value_set("animals", {"include": [{"system": CS, "filter": [_is_a("animal")]}]}),
        value_set("below", {"include": [{"system": CS, "filter": [_below("animal")]}]}),
        value_set(
            "no-puppies",
            {
                "include": [{"system": CS}],
                "exclude": [{"system": CS, "concept": [{"code": "puppy"}]}],
            },
        ),
        value_set("imports", {"include": [{"valueSet": ["http://example.org/vs/animals"]}]}),
        value_set(
            "partial",
            {
                "include": [
                    {"system": CS, "concept": [{"code": "plant"}]},
                    {"system": "http://example.org/other", "filter": [_is_a("x")]},
                ]
            },
        ),
        value_set("missing", {"include": [{"valueSet": ["http://example.org/vs/nowhere"]}]}),
    ):
        definitions.add(vs)
    return Terminology(definitions)


def _is_a(code: str) -> dict[str, str]:
    return {"property": "concept", "op": "is-a", "value": code}


def _below(code: str) -> dict[str, str]:
    return {"property": "concept", "op": "descendent-of", "value": code}


def coding(code: str, system: str = CS) -> dict[str, str]:
    return {"system": system, "code": code}


@pytest.mark.parametrize(
    ("name", "code", "member"),
    [
        ("animals", "animal", True),
        ("animals", "puppy", True),
        ("animals", "plant", False),
        ("below", "animal", False),
        ("below", "dog", True),
        ("no-puppies", "dog", True),
        ("no-puppies", "puppy", False),
        ("imports", "puppy", True),
        ("imports", "plant", False),
    ],
)
def test_membership_on_coding_codeable_concept_and_quantity(
    name: str, code: str, member: bool
) -> None:
    url = f"http://example.org/vs/{name}"
    found = terminology()
    for type_code, value in (
        ("Coding", coding(code)),
        ("CodeableConcept", {"coding": [coding(code)]}),
        ("Quantity", {"value": 1, **coding(code)}),
    ):
        issues = found.check(url, type_code, value, "required")
        assert (issues == []) == member, (type_code, issues)
        if not member:
            assert issues[0][:2] == (IssueSeverity.ERROR, IssueCode.CODE_INVALID)


def test_what_cannot_be_expanded_is_not_checked_and_says_so() -> None:
    found = terminology()
    url = "http://example.org/vs/partial"
    assert found.check(url, "Coding", coding("plant"), "required") == []  # in the known part
    # A code of the system that is fully known, but not in the value set: an error.
    assert found.check(url, "Coding", coding("dog"), "required")[0][0] is IssueSeverity.ERROR
    # A code of a system not loaded here: neither passed nor failed (a warning: maybe a typo).
    (issue,) = found.check(url, "Coding", coding("x1", "http://example.org/other"), "required")
    assert issue[:2] == (IssueSeverity.WARNING, IssueCode.NOT_SUPPORTED)
    assert issue[2].endswith("not checked: code system http://example.org/other is not known here")
    (missing,) = found.check("http://example.org/vs/missing", "code", "a", "required")
    assert "value set http://example.org/vs/nowhere is not loaded" in missing[2]
    (unloaded,) = found.check("http://example.org/vs/none", "code", "a", "extensible")
    assert unloaded[2].endswith("not checked: the value set is not loaded")
