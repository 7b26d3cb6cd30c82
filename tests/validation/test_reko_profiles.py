"""The reko profiles in profiles/, applied by the generic validator to mapped resources."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest

from reko_fhir.validation.definitions import Definitions
from reko_fhir.validation.validator import Validator
from tests.golden import FIXTURES, ROOT

DEFINITIONS = Definitions.core()
DEFINITIONS.add_folder(ROOT / "profiles")
VALIDATOR = Validator(DEFINITIONS)
GOLDEN_B = json.loads(
    (FIXTURES / "mapping" / "b-psychiatry-revoked-consent" / "expected.json").read_text(
        encoding="utf-8"
    )
)


def errors(resource: dict[str, Any]) -> list[tuple[str, str | None]]:
    issues = VALIDATOR.validate(resource, resource["meta"]["profile"][0])
    return [(i.diagnostics, i.expression) for i in issues if i.is_error]


@pytest.mark.parametrize("case", sorted(p.name for p in (FIXTURES / "mapping").iterdir()))
def test_every_mapped_resource_conforms_to_its_reko_profile(case: str) -> None:
    bundle = json.loads((FIXTURES / "mapping" / case / "expected.json").read_text(encoding="utf-8"))
    for entry in bundle["entry"]:
        resource = entry["resource"]
        issues = VALIDATOR.validate(resource, resource["meta"]["profile"][0])
        assert [i for i in issues if i.is_error] == [], entry["request"]["url"]
        assert not [i for i in issues if "unknown" in i.diagnostics], "every extension is known"


def resource(kind: str, index: int = 0) -> dict[str, Any]:
    found = [e["resource"] for e in GOLDEN_B["entry"] if e["resource"]["resourceType"] == kind]
    return copy.deepcopy(found[index])


def meeting() -> dict[str, Any]:  # the avstämningsmöte with FK and the employer (J-91188)
    return copy.deepcopy(
        next(
            e["resource"]
            for e in GOLDEN_B["entry"]
            if e["resource"]["identifier"][0]["value"] == "J-91188"
        )
    )


def revoked() -> dict[str, Any]:
    return copy.deepcopy(
        next(
            e["resource"]
            for e in GOLDEN_B["entry"]
            if e["resource"]["identifier"][0]["value"] == "SAM-0117-2"
        )
    )


Breaker = Callable[[], dict[str, Any]]


def broken(make: Breaker, change: Callable[[dict[str, Any]], object]) -> dict[str, Any]:
    built = make()
    change(built)
    return built


@pytest.mark.parametrize(
    ("resource_", "message", "expression"),
    [
        (
            broken(meeting, lambda r: r.update(reasonCode=[{"text": "F32.1"}])),
            "max allowed = 0",
            "Procedure.reasonCode",
        ),
        (broken(meeting, lambda r: r.pop("extension")), "reko-proc-3", "Procedure"),
        (
            broken(meeting, lambda r: r["code"]["coding"][0].update(code="XX999")),
            "reko-proc-1: The code has a KVÅ coding GC001, DV077 or AW026"
            " (found: urn:oid:1.2.752.116.1.3.2.1.4#XX999)",
            "Procedure.code",
        ),
        (
            broken(meeting, lambda r: r.update(status="on-hold")),
            "reko-procedure-status",
            "Procedure.status",
        ),
        (
            broken(meeting, lambda r: r.pop("performedDateTime")),
            "minimum required = 1",
            "Procedure.performed[x]",
        ),
        (
            broken(meeting, lambda r: r.update(performedDateTime="2025-04-08T09:00")),
            "not a valid dateTime",
            "Procedure.performedDateTime",
        ),
        (
            broken(meeting, lambda r: r.update(shoeSize=44)),
            "unknown element 'shoeSize'",
            "Procedure.shoeSize",
        ),
        (
            broken(
                lambda: resource("EpisodeOfCare"),
                lambda r: r["extension"][1]["extension"][2].update(valuePositiveInt=60),
            ),
            "reko-slp-1",
            "EpisodeOfCare.extension[1]",
        ),
        (
            broken(
                lambda: resource("EpisodeOfCare"), lambda r: r.update(extension=r["extension"][1:])
            ),
            "minimum required = 1",
            "EpisodeOfCare.extension:rekoStatus",
        ),
        (
            broken(lambda: resource("EpisodeOfCare"), lambda r: r.pop("type")),
            "minimum required = 1",
            "EpisodeOfCare.type",
        ),
        (
            broken(revoked, lambda r: r["provision"].update(type="deny")),
            "fixed value permit",
            "Consent.provision.type",
        ),
        (broken(revoked, lambda r: r["provision"]["period"].pop("end")), "reko-con-1", "Consent"),
        (
            broken(revoked, lambda r: r.update(category=[{"text": "samtycke"}])),
            "minimum required = 1",
            "Consent.category:patientConsent",
        ),
        (
            broken(revoked, lambda r: r["scope"]["coding"][0].update(code="research")),
            "pattern value",
            "Consent.scope",
        ),
        (
            broken(
                lambda: resource("CarePlan"),
                lambda r: r.update(addresses=[{"reference": "Condition/1"}]),
            ),
            "max allowed = 0",
            "CarePlan.addresses",
        ),
        (
            broken(lambda: resource("CarePlan"), lambda r: r.update(intent="proposal")),
            "fixed value plan",
            "CarePlan.intent",
        ),
        (
            broken(
                lambda: resource("CarePlan"),
                lambda r: r["activity"][0]["detail"]["code"]["coding"][0].update(code="GC001"),
            ),
            "reko-cp-1",
            "CarePlan.activity[0].detail",
        ),
        (
            broken(
                lambda: resource("PractitionerRole"),
                lambda r: r["identifier"][0].update(value="SE123"),
            ),
            "reko-pr-1",
            "PractitionerRole",
        ),
        (
            broken(lambda: resource("Communication"), lambda r: r.pop("sent")),
            "minimum required = 1",
            "Communication.sent",
        ),
        (
            broken(
                lambda: resource("Patient"),
                lambda r: r["identifier"][0].update(system="urn:oid:1.2.3"),
            ),
            "reko-pat-1",
            "Patient",
        ),
    ],
)
def test_what_the_contract_forbids_is_an_error_at_its_element(
    resource_: dict[str, Any], message: str, expression: str
) -> None:
    found = errors(resource_)
    assert any(message in text and where == expression for text, where in found), found


def test_a_care_team_without_a_coordinator_is_a_warning_not_an_error() -> None:
    # Contract 2: doctors, nurses and others may perform the coordination (seeds 001, 003).
    team = resource("CareTeam")
    team["participant"][1]["role"][0]["coding"][0].update(code="lakare")
    issues = VALIDATOR.validate(team, team["meta"]["profile"][0])
    assert [i.expression for i in issues if i.is_error] == []
    assert [(i.severity.value, i.expression) for i in issues if "reko-ct-1" in i.diagnostics] == [
        ("warning", "CareTeam")
    ]


def test_an_extension_outside_its_context_is_an_error() -> None:
    patient = resource("Patient")
    patient["extension"] = [
        {
            "url": "http://reko-fhir.se/fhir/StructureDefinition/consent-form",
            "valueCoding": {
                "system": "http://reko-fhir.se/fhir/CodeSystem/reko-consent-form",
                "code": "muntligt",
            },
        }
    ]
    assert (
        "extension http://reko-fhir.se/fhir/StructureDefinition/consent-form is not allowed on Patient (only Consent)",
        "Patient.extension[0]",
    ) in errors(patient)


def test_an_extension_in_a_backbone_context_is_accepted_there() -> None:
    plan = resource("CarePlan")  # sick-leave-period on CarePlan.activity.detail
    assert errors(plan) == []
