"""Contract 2, rule 5: a diagnosis code in any element, contained resources included, is an
error at that Coding; the message names the code system, never the code."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from reko_fhir.validation.diagnosis import diagnosis_issues, is_diagnosis_system
from reko_fhir.validation.service import ValidationService, reko_definitions
from tests.golden import FIXTURES

SERVICE = ValidationService(reko_definitions())


def fixture(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / "valid" / f"{name}.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize(
    ("system", "diagnosis"),
    [
        ("urn:oid:1.2.752.116.1.1.1.1.3", True),  # ICD-10-SE
        ("http://hl7.org/fhir/sid/icd-10", True),
        ("urn:oid:2.16.840.1.113883.6.3", True),
        ("http://hl7.org/fhir/sid/icd-10-cm", True),
        ("https://terminology.example.se/ICD10SE", True),
        ("urn:oid:1.2.752.116.1.3.2.1.4", False),  # KVÅ
        ("http://snomed.info/sct", False),
        (None, False),
    ],
)
def test_which_systems_are_diagnosis_systems(system: str | None, diagnosis: bool) -> None:
    assert is_diagnosis_system(system) is diagnosis


def test_a_diagnosis_in_a_contained_goal_is_found_at_its_path() -> None:
    plan = fixture("careplan-no-addresses")
    plan["contained"][0]["description"] = {
        "coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": "F43.8"}],
        "text": "Åter i arbete",
    }
    found = diagnosis_issues(plan, "CarePlan")
    assert [(i.severity.value, i.expression) for i in found] == [
        ("error", "CarePlan.contained[0].description.coding[0]")
    ]
    assert "F43" not in found[0].diagnostics


def test_a_diagnosis_in_an_episode_extension_is_an_error_through_the_service() -> None:
    episode = fixture("episode-reko-status")
    ext = copy.deepcopy(episode["extension"][0])
    ext["valueCoding"] = {"system": "urn:oid:1.2.752.116.1.1.1.1.3", "code": "F32.1"}
    episode["extension"].append(ext)
    issues = SERVICE.validate(episode)
    assert any(
        i.is_error
        and i.expression == "EpisodeOfCare.extension[3].valueCoding"
        and "a diagnosis code" in i.diagnostics
        for i in issues
    )


def test_no_golden_mapping_output_carries_a_diagnosis() -> None:
    for case in sorted((FIXTURES / "mapping").iterdir()):
        bundle = json.loads((case / "expected.json").read_text(encoding="utf-8"))
        assert diagnosis_issues(bundle, "Bundle") == [], case.name
