"""Issues a person can act on: the element's path, the value named, FHIR JSON, one issue for a
profile of another type."""

from __future__ import annotations

import copy
import json
from typing import Any

from reko_fhir.validation import messages
from reko_fhir.validation.definitions import Definitions
from reko_fhir.validation.service import reko_definitions
from reko_fhir.validation.validator import Validator
from tests.golden import ROOT

DEFINITIONS = reko_definitions()
VALIDATOR = Validator(DEFINITIONS)
PROCEDURE = "http://reko-fhir.se/fhir/StructureDefinition/RekoProcedure"


def test_the_focus_of_an_invariant_is_the_one_child_it_looks_at() -> None:
    assert messages.focus("code.coding.where(system = 'x' and code = 'y').exists()") == "code"
    assert messages.focus("code.exists() implies category.exists()") is None
    assert messages.focus("onBehalfOf.exists() implies (member.resolve().exists())") is None
    assert messages.focus("(identifier.count() + name.count()) > 0") is None
    assert messages.focus("reference.startsWith('#').not() or (x in %rootResource.id)") is None
    assert messages.focus("gender = 'male'") == "gender"


def test_values_print_as_fhir_json_or_codes_never_python() -> None:
    concept = {"coding": [{"system": "http://snomed.info/sct", "code": "1"}], "text": "x"}
    assert messages.json_text(concept) == "http://snomed.info/sct#1"
    assert messages.json_text(concept, plain=False) == (
        '{"coding": [{"system": "http://snomed.info/sct", "code": "1"}], "text": "x"}'
    )
    assert messages.json_text(True) == "true"


def test_a_pattern_mismatch_prints_both_values_as_json() -> None:
    definitions = Definitions.core()
    definitions.add(
        {
            "resourceType": "StructureDefinition",
            "url": "http://example.org/StructureDefinition/p",
            "name": "P",
            "status": "active",
            "kind": "resource",
            "abstract": False,
            "type": "Patient",
            "baseDefinition": "http://hl7.org/fhir/StructureDefinition/Patient",
            "derivation": "constraint",
            "differential": {
                "element": [
                    {
                        "id": "Patient.maritalStatus",
                        "path": "Patient.maritalStatus",
                        "patternCodeableConcept": {"coding": [{"system": "s", "code": "M"}]},
                    }
                ]
            },
        }
    )
    patient = {
        "resourceType": "Patient",
        "maritalStatus": {"coding": [{"system": "s", "code": "S"}]},
    }
    issues = Validator(definitions).validate(patient, "http://example.org/StructureDefinition/p")
    (issue,) = [i for i in issues if i.is_error]
    assert issue.expression == "Patient.maritalStatus"
    assert issue.diagnostics == (
        'value {"coding": [{"system": "s", "code": "S"}]} does not match the pattern value'
        ' {"coding": [{"system": "s", "code": "M"}]}'
    )
    assert "'" not in issue.diagnostics  # no Python repr


def test_a_profile_of_another_type_is_one_issue() -> None:
    patient: dict[str, Any] = {"resourceType": "Patient", "active": True}
    issues = VALIDATOR.validate(patient, PROCEDURE)
    errors = [i for i in issues if i.is_error]
    assert [(i.expression, i.diagnostics) for i in errors] == [
        (
            "Patient",
            f"wrong type for this profile: {PROCEDURE} is for Procedure resources,"
            " this is a Patient; not checked against it",
        )
    ]


def test_a_diagnosis_in_reason_code_is_called_one() -> None:
    path = ROOT / "fixtures" / "invalid" / "procedure-no-diagnosis.json"
    resource = copy.deepcopy(json.loads(path.read_text(encoding="utf-8")))
    (issue,) = [i for i in VALIDATOR.validate(resource, PROCEDURE) if i.is_error]
    assert issue.expression == "Procedure.reasonCode"
    assert "a diagnosis (http://hl7.org/fhir/sid/icd-10#F32.1)" in issue.diagnostics
    assert "Procedure.reasonCode" not in issue.diagnostics  # the path is the expression, once
