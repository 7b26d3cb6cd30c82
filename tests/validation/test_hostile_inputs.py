"""Bad input gets issues, never an exception: seeded mutants of every fixture (wrong JSON
types, unknown and ``_x`` keys, extensions, codings, contained resources) are validated, and
each issue has a severity, a code, diagnostics and the FHIRPath of its element.
"""

from __future__ import annotations

import copy
import json
import random
import re
from typing import Any

import pytest

from reko_fhir.outcomes import Issue
from reko_fhir.validation.compiled import _reason
from reko_fhir.validation.definitions import Definitions
from reko_fhir.validation.service import ValidationService, reko_definitions
from reko_fhir.validation.validator import Validator
from tests.golden import CONFORMANCE_CASES, FIXTURES
from tests.validation.mutants import conformance_instances, mutants, mutate

SEED = 7  # fixed: the same mutants on every run (mutants(SEED)[i] makes a failing one again)


@pytest.fixture(scope="module")
def service() -> ValidationService:
    return ValidationService(reko_definitions())


def _problems(name: str, validate: Any, resource: Any) -> list[str]:
    try:
        issues: list[Issue] = validate(resource)
    except Exception as exc:  # what the test looks for
        return [f"{name}: raised {type(exc).__name__}: {exc}"]
    return [
        f"{name}: {issue}"
        for issue in issues
        if not (issue.severity and issue.code and issue.diagnostics and issue.expression)
    ]


def test_no_mutant_of_a_fixture_makes_the_validation_raise(service: ValidationService) -> None:
    made = mutants(SEED)
    assert len(made) > 500
    problems = [p for name, mutant in made for p in _problems(name, service.validate, mutant)]
    assert not problems, "\n".join(problems[:20])


def test_no_mutant_of_a_conformance_case_makes_the_validator_raise() -> None:
    validator = Validator(Definitions.core())
    instances = conformance_instances(CONFORMANCE_CASES)
    resources = [(name, r) for name, r in instances if isinstance(r, dict)]
    assert resources
    rng = random.Random(SEED)
    pool = [r for _, r in resources]
    problems = [
        p
        for name, resource in resources
        for n in range(3)
        for p in _problems(f"{name}:{n}", validator.validate, mutate(resource, rng, pool))
    ]
    assert not problems, "\n".join(problems[:20])


def _issues(service: ValidationService, resource: Any) -> list[tuple[str, str, str | None]]:
    return [(str(i.severity), i.diagnostics, i.expression) for i in service.validate(resource)]


def test_a_code_of_the_wrong_json_type_is_an_error_of_that_code(service: ValidationService) -> None:
    scope = "http://terminology.hl7.org/CodeSystem/consentscope"
    consent = {
        "resourceType": "Consent",
        "status": "active",
        "category": [{"coding": [{"system": "http://loinc.org", "code": {"no": "code"}}]}],
        "scope": {"coding": [{"system": scope, "code": "patient-privacy"}]},
    }
    found = _issues(service, consent)
    assert ("error", "a code is a JSON string", "Consent.category[0].coding[0].code") in found


def test_a_meta_of_the_wrong_json_type_is_an_error_of_the_meta(service: ValidationService) -> None:
    for meta, where in ((3, "Patient.meta"), ({"profile": 3}, "Patient.meta.profile")):
        found = _issues(service, {"resourceType": "Patient", "meta": meta})
        assert [e for severity, _, e in found if severity == "error" and e == where], found


def test_rules_across_a_bundle_skip_references_of_the_wrong_json_type(
    service: ValidationService,
) -> None:
    procedure = {
        "resourceType": "Procedure",
        "status": "completed",
        "subject": {"reference": {"id": "Patient/1"}},
        "performedDateTime": "2024-01-02",
        "performer": [True],
        "code": {"coding": "GC001"},
        "extension": [7, {"url": 3}],
    }
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"fullUrl": "urn:uuid:1", "resource": procedure}, 5],
    }
    found = _issues(service, bundle)
    assert any(e == "Bundle.entry[0].resource.subject.reference" for _, _, e in found), found


def test_a_not_checked_message_reads_the_same_on_every_run() -> None:
    class Node:
        pass

    first = _reason(Exception(f"Expected string, but got [{Node()!r}, {Node()!r}]"))
    second = _reason(Exception(f"Expected string, but got [{Node()!r}]"))
    assert "0x" not in first
    assert first == "Exception: Expected string, but got [<Node>, <Node>]"
    assert second == "Exception: Expected string, but got [<Node>]"


def test_a_not_checked_issue_is_said_once_whatever_the_run(service: ValidationService) -> None:
    patient = {
        "resourceType": "Patient",
        "generalPractitioner": [{"reference": [{"a": 1}, {"b": 2}]}],
    }
    first = service.validate(patient)
    second = service.validate(copy.deepcopy(patient))
    undecided = [i.diagnostics for i in first if "not checked" in i.diagnostics]
    assert undecided
    assert not [d for d in undecided if re.search(r"0x[0-9a-f]+", d)]
    assert [i.diagnostics for i in first] == [i.diagnostics for i in second]


def test_a_single_value_for_a_repeating_element_is_an_error_of_that_element(
    service: ValidationService,
) -> None:
    patient = {"resourceType": "Patient", "name": {"family": "Berg"}}
    found = _issues(service, patient)
    assert ("error", "this element repeats: its value is a JSON array", "Patient.name") in found


def test_an_array_for_a_single_element_is_an_error_even_of_one_value(
    service: ValidationService,
) -> None:
    patient = {"resourceType": "Patient", "gender": ["male"], "meta": [{}]}
    found = _issues(service, patient)
    single = "this element does not repeat: its value is not a JSON array"
    assert ("error", single, "Patient.gender") in found
    assert ("error", single, "Patient.meta") in found


def test_the_array_goes_by_the_base_not_the_profile(service: ValidationService) -> None:
    """The reko Consent allows one organization (max 1), but Consent.organization repeats in
    R4, so its JSON is an array (https://hl7.org/fhir/R4/json.html#list)."""
    consent = json.loads((FIXTURES / "valid" / "consent-category.json").read_text())
    assert not [i for i in service.validate(consent) if i.is_error]
    consent["organization"] = consent["organization"][0]
    found = [(s, d, e) for s, d, e in _issues(service, consent) if s == "error"]
    assert found == [
        ("error", "this element repeats: its value is a JSON array", "Consent.organization")
    ]
