"""No check passes silently: an invariant the engine cannot decide is an issue, and is counted.

Also the invariants fhirpathpy cannot evaluate or evaluates wrongly, decided in Python
(validation/fhirpath_gaps.py, narrative.py), and none undecided on the fixtures.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from reko_fhir.outcomes import IssueCode, IssueSeverity
from reko_fhir.validation.compiled import Constraint, compiled_fhirpath
from reko_fhir.validation.definitions import Definitions
from reko_fhir.validation.fhirpath_gaps import Undecided, gap_invariants
from reko_fhir.validation.issue_kinds import is_undecided
from reko_fhir.validation.service import ValidationService, reko_definitions
from reko_fhir.validation.validator import Validator
from tests.golden import FIXTURES

PROFILE = "http://example.org/StructureDefinition/undecidable"


def validator_with(*constraints: tuple[str, str]) -> Validator:
    definitions = Definitions.core()
    definitions.add(
        {
            "resourceType": "StructureDefinition",
            "url": PROFILE,
            "name": "Undecidable",
            "status": "active",
            "kind": "resource",
            "abstract": False,
            "type": "Patient",
            "baseDefinition": "http://hl7.org/fhir/StructureDefinition/Patient",
            "derivation": "constraint",
            "differential": {
                "element": [
                    {
                        "id": "Patient",
                        "path": "Patient",
                        "constraint": [
                            {"key": key, "severity": "error", "human": key, "expression": text}
                            for key, text in constraints
                        ],
                    }
                ]
            },
        }
    )
    return Validator(definitions)


PATIENT = {"resourceType": "Patient", "name": [{"family": "Berg"}], "gender": "female"}


@pytest.mark.parametrize(
    ("expression", "why"),
    [
        ("name.conformsTo('http://example.org/x')", "Not implemented: conformsTo"),
        ("gender.memberOf('http://example.org/vs')", "the value set cannot be expanded here"),
        ("'unterminated", "not valid FHIRPath"),
        ("name..family.exists()", "not valid FHIRPath"),  # fhirpathpy's parser would recover
        ("name.exists() )(", "not valid FHIRPath"),
    ],
)
def test_an_expression_the_engine_cannot_evaluate_is_an_issue_not_a_pass(
    expression: str, why: str
) -> None:
    issues = validator_with(("test-1", expression)).validate(PATIENT, PROFILE)
    (issue,) = [i for i in issues if "test-1" in i.diagnostics]
    assert issue.severity is IssueSeverity.INFORMATION
    assert issue.code is IssueCode.NOT_SUPPORTED
    assert issue.expression == "Patient"
    assert issue.diagnostics.startswith("test-1: not checked: ")
    assert why in issue.diagnostics
    assert issue.diagnostics.endswith(f"expression: {expression}")
    assert is_undecided(issue)
    assert not issue.is_error


def test_the_same_profile_decides_what_it_can() -> None:
    issues = validator_with(("test-1", "name.exists()"), ("test-2", "gender = 'male'")).validate(
        PATIENT, PROFILE
    )
    assert [i.diagnostics for i in issues if "test-" in i.diagnostics] == [
        "test-2: test-2 (found: female)"  # a primitive: named, the location stays the element's
    ]
    assert not [i for i in issues if is_undecided(i)]


def test_member_of_is_decided_with_the_validators_terminology() -> None:
    gender = "http://hl7.org/fhir/ValueSet/administrative-gender"
    validator = validator_with(("test-1", f"gender.memberOf('{gender}')"))
    assert not [i for i in validator.validate(PATIENT, PROFILE) if "test-1" in i.diagnostics]
    wrong = {**PATIENT, "gender": "dragon"}
    assert [
        i.diagnostics for i in validator.validate(wrong, PROFILE) if "test-1" in i.diagnostics
    ] == ["test-1: test-1 (found: dragon)"]


def test_an_undecided_verdict_is_not_a_boolean() -> None:
    verdict = Constraint("x-1", "error", "", "name.conformsTo('x')").verdict(PATIENT, PATIENT)
    assert isinstance(verdict, Undecided)
    with pytest.raises(TypeError):
        bool(verdict)
    assert isinstance(compiled_fhirpath("'unterminated"), str)


# -- what fhirpathpy lacks, decided in Python ---------------------------------------------------


def core_issues(resource: dict[str, Any]) -> list[str]:
    issues = Validator(Definitions.core()).validate(resource)
    assert not [i for i in issues if is_undecided(i)], issues
    return [i.diagnostics.split(":")[0] for i in issues if i.code is IssueCode.INVARIANT]


def observation(**more: Any) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "status": "final",
        "code": {"text": "x"},
        "text": {"status": "generated", "div": '<div xmlns="http://www.w3.org/1999/xhtml">x</div>'},
        **more,
    }


def quantity(value: float, code: str = "mg") -> dict[str, Any]:
    return {"value": value, "unit": code, "system": "http://unitsofmeasure.org", "code": code}


def test_rng_2_compares_the_quantities_of_a_range() -> None:
    assert "rng-2" in core_issues(observation(valueRange={"low": quantity(5), "high": quantity(3)}))
    assert "rng-2" not in core_issues(
        observation(valueRange={"low": quantity(3), "high": quantity(5)})
    )
    mixed = observation(valueRange={"low": quantity(1, "g"), "high": quantity(5, "mg")})
    issues = Validator(Definitions.core()).validate(mixed)
    (undecided,) = [i for i in issues if is_undecided(i)]
    assert undecided.diagnostics.startswith("rng-2: not checked: low (")
    assert undecided.expression == "Observation.valueRange"


def test_dom_3_with_contained_resources() -> None:
    contained = [{"resourceType": "Patient", "id": "p1"}]
    referenced = observation(contained=contained, subject={"reference": "#p1"})
    assert "dom-3" not in core_issues(referenced)
    assert "dom-3" in core_issues(observation(contained=contained))
    back = copy.deepcopy(contained)
    back[0]["link"] = [{"other": {"reference": "#"}, "type": "seealso"}]
    assert "dom-3" not in core_issues(observation(contained=back))


def test_dates_are_compared_as_instants_not_strings() -> None:
    task = {
        "resourceType": "Task",
        "status": "draft",
        "intent": "order",
        "text": observation()["text"],
        "authoredOn": "2024-01-01T10:00:00+02:00",  # 08:00Z
        "lastModified": "2024-01-01T09:30:00+01:00",  # 08:30Z: later, though less as text
    }
    assert "inv-1" not in core_issues(task)
    assert "inv-1" in core_issues({**task, "lastModified": "2024-01-01T07:30:00Z"})


def test_choice_elements_of_backbone_elements_are_found() -> None:
    # gol-1 looks at Goal.target.detail[x]; untyped, `detail` found nothing and it always held.
    goal = {
        "resourceType": "Goal",
        "text": observation()["text"],
        "lifecycleStatus": "active",
        "description": {"text": "walk"},
        "subject": {"reference": "Patient/1"},
        "target": [{"detailQuantity": quantity(5)}],
    }
    assert "gol-1" in core_issues(goal)
    goal["target"][0]["measure"] = {"text": "steps"}
    assert "gol-1" not in core_issues(goal)


@pytest.mark.parametrize(
    ("div", "keys"),
    [
        ('<div xmlns="http://www.w3.org/1999/xhtml"><p>ok&nbsp;<b>x</b></p></div>', []),
        ('<div xmlns="http://www.w3.org/1999/xhtml"><script>alert(1)</script>x</div>', ["txt-1"]),
        ('<div xmlns="http://www.w3.org/1999/xhtml"><p onclick="x()">x</p></div>', ["txt-1"]),
        ('<div xmlns="http://www.w3.org/1999/xhtml">  </div>', ["txt-2"]),
        ("<div>no namespace</div>", ["txt-1"]),
    ],
)
def test_narrative_html_checks(div: str, keys: list[str]) -> None:
    found = core_issues(observation(text={"status": "generated", "div": div}))
    assert [k for k in found if k.startswith("txt-")] == keys


def test_resolve_finds_bundle_entries_for_ctm_1() -> None:
    team = {
        "resourceType": "CareTeam",
        "text": observation()["text"],
        "participant": [
            {"member": {"reference": "urn:uuid:org-1"}, "onBehalfOf": {"reference": "urn:uuid:o"}}
        ],
    }
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {"fullUrl": "urn:uuid:team", "resource": team},
            {
                "fullUrl": "urn:uuid:org-1",
                "resource": {"resourceType": "Organization", "name": "x"},
            },
        ],
    }
    service = ValidationService(Definitions.core())
    issues = service.validate(bundle, None)
    assert not [i for i in issues if is_undecided(i)]
    assert [i.expression for i in issues if i.diagnostics.startswith("ctm-1")] == [
        "Bundle.entry[0].resource.participant[0]"
    ]
    team["participant"][0]["member"] = {"reference": "urn:uuid:elsewhere"}  # not resolvable
    assert not [i for i in service.validate(bundle, None) if "ctm-1" in i.diagnostics]


def test_every_gap_invariant_is_one_the_core_carries() -> None:
    core = {
        (c["key"], c["expression"])
        for structure in Definitions.core().structures.values()
        for element in structure.get("snapshot", {}).get("element", [])
        for c in element.get("constraint", [])
        if "expression" in c
    }
    assert set(gap_invariants()) <= core


def test_no_check_is_undecided_on_the_fixtures() -> None:
    service = ValidationService(reko_definitions())
    paths = sorted(FIXTURES.glob("*/*.json")) + sorted(FIXTURES.glob("mapping/*/expected.json"))
    resources = [json.loads(Path(p).read_text(encoding="utf-8")) for p in paths]
    resources = [r for r in resources if isinstance(r, dict) and "resourceType" in r]
    assert len(resources) > 100
    undecided = [i for r in resources for i in service.validate(r) if is_undecided(i)]
    assert undecided == []
