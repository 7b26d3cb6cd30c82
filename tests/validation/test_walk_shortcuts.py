"""The walk's shortcuts find what the full walk finds (issue 15's speed work).

- A complex value with nothing to check but its children (WalkPlans.children_only) is walked
  from _node's loop, not through _value and _complex.
- An extension's slice is not walked again where it checks the extension's children as the
  base walk of it as any extension did (WalkPlans.walked_as): the same issues, said before.

Each is compared with a validator that takes neither, on every fixture and on extensions
made to differ from the slice in each way walked_as looks at.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from reko_fhir.outcomes import Issue
from reko_fhir.validation.service import ValidationService, reko_definitions
from reko_fhir.validation.walk_plans import WalkPlans
from tests.validation.test_fhirpath_compiler import FIXTURE_INPUTS

SERVICE = ValidationService(reko_definitions())
FULL = ValidationService(reko_definitions())
FULL.validator.plans.children_only = lambda rule, type_code: False  # type: ignore[method-assign]
FULL.validator.plans.walked_as = lambda *args: False  # type: ignore[method-assign]

ACTOR = "http://reko-fhir.se/fhir/StructureDefinition/external-actor"
PROCEDURE: dict[str, Any] = {
    "resourceType": "Procedure",
    "meta": {"profile": ["http://reko-fhir.se/fhir/StructureDefinition/RekoProcedure"]},
    "extension": [{"url": ACTOR, "valueReference": {"reference": "Organization/1"}}],
    "identifier": [{"system": "https://journal.example/sid", "value": "J-1"}],
    "status": "completed",
    "category": {
        "coding": [
            {
                "system": "http://reko-fhir.se/fhir/CodeSystem/reko-coordination-part",
                "code": "extern-samverkan",
            }
        ]
    },
    "code": {"coding": [{"system": "urn:oid:1.2.752.116.1.3.2.1.4", "code": "GC001"}]},
    "subject": {"reference": "Patient/1"},
    "performedDateTime": "2025-04-08T09:00:00+02:00",
    "performer": [{"actor": {"reference": "PractitionerRole/1"}}],
}
EXTENSIONS: list[Any] = [
    {"url": ACTOR, "valueReference": {"reference": "Organization/1"}},
    {"url": ACTOR, "valueString": "x"},  # a type the extension's profile does not allow
    {"url": ACTOR, "valueReference": {"reference": 5}},
    {"url": ACTOR, "valueReference": {}},
    {"url": ACTOR, "valueReference": {"reference": "Organization/1", "foo": 1}},
    {"url": ACTOR},
    {"url": ACTOR, "id": 4, "valueReference": {"reference": "Organization/1"}},
    {"url": ACTOR, "valueReference": {"reference": "Organization/1"}, "unknown": True},
    # what walked_as leaves to the walk: nested extensions, _x parts, a resource
    {"url": ACTOR, "extension": [{"url": "a", "valueString": "b"}]},
    {
        "url": ACTOR,
        "valueReference": {"reference": "Organization/1", "extension": [{"url": ACTOR}]},
    },
    {"url": ACTOR, "valueReference": {"_reference": {"id": "r"}}},
    {"url": ACTOR, "_url": {"extension": [{"url": ACTOR}]}},
    {"url": ACTOR, "valueReference": {"reference": [["x"]]}},
    {"url": ACTOR, "valueReference": {"resourceType": "Organization"}},
]


def as_rows(issues: list[Issue]) -> list[tuple[Any, ...]]:
    return [(i.severity, i.code, i.expression, i.diagnostics) for i in issues]


@pytest.mark.parametrize("resource", FIXTURE_INPUTS)
def test_the_shortcuts_find_what_the_full_walk_finds_on_every_fixture(resource: Any) -> None:
    assert as_rows(SERVICE.validate(resource)) == as_rows(FULL.validate(resource))


@pytest.mark.parametrize("extension", EXTENSIONS)
def test_an_extension_slice_finds_what_the_full_walk_finds(extension: Any) -> None:
    procedure = copy.deepcopy(PROCEDURE)
    procedure["extension"] = [extension, copy.deepcopy(extension)]
    assert as_rows(SERVICE.validate(procedure)) == as_rows(FULL.validate(procedure))


def test_the_shortcuts_are_taken(monkeypatch: pytest.MonkeyPatch) -> None:
    """Not vacuous: on the reko Procedure the extension's slice is skipped, and values are
    walked from the loop (with the shortcuts off, the walk makes more calls)."""
    answers: list[bool] = []
    walked_as = WalkPlans.walked_as

    def spy(self: WalkPlans, *args: Any) -> bool:
        answers.append(walked_as(self, *args))
        return answers[-1]

    expected = as_rows(SERVICE.validate(PROCEDURE))
    monkeypatch.setattr(WalkPlans, "walked_as", spy)
    service = ValidationService(reko_definitions())
    assert as_rows(service.validate(PROCEDURE)) == expected
    assert answers == [True]
    procedure = copy.deepcopy(PROCEDURE)
    procedure["extension"][0]["valueReference"]["_reference"] = {"id": "r"}
    service.validate(procedure)
    assert answers == [True, False]
    assert any(
        plain
        for rule in [service.validator.rule(PROCEDURE["meta"]["profile"][0])]
        if rule is not None
        for plan in rule.walks.values()
        for *_, plain in plan.steps.values()
    )
