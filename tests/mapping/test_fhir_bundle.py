"""The Bundle a case maps to, checked against the profile contract row by row."""

from __future__ import annotations

import copy
import uuid
from typing import Any

import pytest

from reko_fhir.domain import CoordinationCase
from reko_fhir.formats import parse_json, parse_xml
from reko_fhir.mapping import bundle_to_case, case_to_bundle_json
from reko_fhir.mapping.journal import load_mapping, map_file
from reko_fhir.outcomes import OperationOutcomeError
from tests.golden import FIXTURES, MAPPINGS

BASE = "http://reko-fhir.se/fhir"
KVA = "urn:oid:1.2.752.116.1.3.2.1.4"


def fixture_case(name: str) -> CoordinationCase:
    spec = load_mapping(MAPPINGS / "nordjournal-json.yaml")
    (case,) = map_file(spec, FIXTURES / "mapping" / name / "input.nordjournal-json.json").cases
    return case


@pytest.fixture(scope="module")
def bundle_b() -> dict[str, Any]:
    return case_to_bundle_json(fixture_case("b-psychiatry-revoked-consent"))


def resources(bundle: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == kind]


def codes(concept: dict[str, Any], system: str) -> list[str]:
    return [c["code"] for c in concept.get("coding", []) if c["system"] == system]


def test_every_resource_names_its_reko_profile(bundle_b: dict[str, Any]) -> None:
    for entry in bundle_b["entry"]:
        kind = entry["resource"]["resourceType"]
        assert entry["resource"]["meta"]["profile"] == [f"{BASE}/StructureDefinition/Reko{kind}"]


def test_entries_are_conditional_updates_on_business_identifiers(bundle_b: dict[str, Any]) -> None:
    assert bundle_b["type"] == "transaction"
    for entry in bundle_b["entry"]:
        ident = entry["resource"]["identifier"][0]
        kind = entry["resource"]["resourceType"]
        assert entry["request"] == {
            "method": "PUT",
            "url": f"{kind}?identifier={ident['system']}|{ident['value']}",
        }
        assert entry["fullUrl"].startswith("urn:uuid:")


def test_patient_is_identified_by_samordningsnummer(bundle_b: dict[str, Any]) -> None:
    (patient,) = resources(bundle_b, "Patient")
    assert patient["identifier"] == [
        {
            "system": "http://electronichealth.se/identifier/samordningsnummer",
            "value": "199103744521",
        }
    ]


def test_patient_fullurl_is_not_derived_from_the_personnummer(bundle_b: dict[str, Any]) -> None:
    (entry,) = [e for e in bundle_b["entry"] if e["resource"]["resourceType"] == "Patient"]
    for system in ("http://electronichealth.se/identifier/samordningsnummer", "urn:oid:x"):
        guess = uuid.uuid5(uuid.NAMESPACE_URL, f"{system}#Patient/199103744521")
        assert entry["fullUrl"] != f"urn:uuid:{guess}"


def test_procedures_carry_kva_part_and_external_actors_but_no_diagnosis(
    bundle_b: dict[str, Any],
) -> None:
    procedures = {p["identifier"][0]["value"]: p for p in resources(bundle_b, "Procedure")}
    meeting = procedures["J-91188"]  # avstämningsmöte with FK and the employer
    assert codes(meeting["code"], KVA) == ["GC001"]
    assert codes(meeting["category"], f"{BASE}/CodeSystem/reko-coordination-part") == [
        "extern-samverkan"
    ]
    actors = [
        e for e in meeting["extension"] if e["url"] == f"{BASE}/StructureDefinition/external-actor"
    ]
    assert len(actors) == 2
    assert meeting["performedDateTime"] == "2025-04-08T09:00:00+02:00"
    assert codes(procedures["J-91120"]["code"], KVA) == ["DV077"]
    assert codes(procedures["J-91402"]["code"], KVA) == ["AW026"]
    for procedure in procedures.values():
        assert "reasonCode" not in procedure
        assert "reasonReference" not in procedure
        assert procedure["performer"][0]["actor"]["reference"].startswith("urn:uuid:")


def test_revoked_consent_is_inactive_with_an_end_and_keeps_its_history(
    bundle_b: dict[str, Any],
) -> None:
    consents = {c["identifier"][0]["value"]: c for c in resources(bundle_b, "Consent")}
    revoked, coordination = consents["SAM-0117-2"], consents["SAM-0117-1"]
    assert revoked["status"] == "inactive"
    assert revoked["provision"]["period"] == {"start": "2025-03-12", "end": "2025-04-22"}
    history = [e for e in revoked["extension"] if e["url"].endswith("/consent-history")]
    assert [
        [x.get("valueCode") for x in h["extension"] if x["url"] == "action"] for h in history
    ] == [
        ["given"],
        ["revoked"],
    ]
    assert coordination["status"] == "active"
    assert "actor" not in coordination["provision"]
    for consent in consents.values():
        assert codes(consent["scope"], "http://terminology.hl7.org/CodeSystem/consentscope") == [
            "patient-privacy"
        ]
        assert codes(consent["category"][0], "http://loinc.org") == ["59284-0"]
        assert codes(consent["policyRule"], f"{BASE}/CodeSystem/reko-policy") == ["sfs-2019-1297"]
        assert consent["provision"]["type"] == "permit"
        for actor in consent["provision"].get("actor", []):
            assert codes(
                actor["role"], "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
            ) == ["IRCP"]


def test_careplan_has_no_addresses_and_dv077_on_sick_leave_steps(bundle_b: dict[str, Any]) -> None:
    (plan,) = resources(bundle_b, "CarePlan")
    assert "addresses" not in plan
    assert plan["intent"] == "plan"
    assert codes(plan["category"][0], f"{BASE}/CodeSystem/reko-careplan-category") == [
        "atergang-i-arbete"
    ]
    for activity in plan["activity"]:
        detail = activity["detail"]
        carries_period = any(
            e["url"].endswith("/sick-leave-period") for e in detail.get("extension", [])
        )
        if carries_period:
            assert codes(detail["code"], KVA) == ["DV077"]
    assert [g["reference"] for g in plan["goal"]] == ["#goal-1", "#goal-2"]


def test_episode_has_status_extension_sick_leave_and_gc001(bundle_b: dict[str, Any]) -> None:
    (episode,) = resources(bundle_b, "EpisodeOfCare")
    assert codes(episode["type"][0], KVA) == ["GC001"]
    urls = [e["url"] for e in episode["extension"]]
    assert urls.count(f"{BASE}/StructureDefinition/sick-leave-period") == 2
    assert f"{BASE}/StructureDefinition/reko-status" in urls


def test_care_team_has_a_coordinator_and_communication_goes_to_fk(bundle_b: dict[str, Any]) -> None:
    (team,) = resources(bundle_b, "CareTeam")
    roles = [
        c for p in team["participant"] for c in codes(p["role"][0], f"{BASE}/CodeSystem/reko-role")
    ]
    assert "rehabiliteringskoordinator" in roles
    (notice,) = resources(bundle_b, "Communication")
    fk = next(
        e["fullUrl"]
        for e in bundle_b["entry"]
        if e["resource"].get("identifier", [{}])[0].get("value") == "2021005521"
    )
    assert notice["recipient"] == [{"reference": fk}]
    assert codes(notice["category"][0], f"{BASE}/CodeSystem/reko-communication-category") == [
        "rehabiliteringsbehov"
    ]


def test_identical_records_from_another_case_keep_their_ids() -> None:
    """Ids depend on the record, not on what else the case holds."""
    case = fixture_case("a-primary-care")
    full = case_to_bundle_json(case)
    fewer = case_to_bundle_json(
        CoordinationCase(
            **{
                **{f: getattr(case, f) for f in case.__dataclass_fields__},
                "activities": case.activities[:2],
            }
        )
    )
    ids = {e["request"]["url"]: e["fullUrl"] for e in full["entry"]}
    assert all(ids[e["request"]["url"]] == e["fullUrl"] for e in fewer["entry"])


def broken(bundle: dict[str, Any], kind: str, change: Any) -> dict[str, Any]:
    copy_ = copy.deepcopy(bundle)
    for entry in copy_["entry"]:
        if entry["resource"]["resourceType"] == kind:
            change(entry["resource"])
            break
    return copy_


@pytest.mark.parametrize(
    ("kind", "change", "expression", "text"),
    [
        (
            "Procedure",
            lambda r: r.update(status="bogus"),
            ".resource.status",
            "'bogus' is not one of",
        ),
        (
            "Procedure",
            lambda r: r["performer"][0]["actor"].update(reference="urn:uuid:nope"),
            ".resource.performer[0].actor.reference",
            "not an entry of this Bundle",
        ),
        (
            "Procedure",
            lambda r: r.pop("performedDateTime"),
            ".resource.performedDateTime",
            "is required",
        ),
        (
            "Consent",
            lambda r: r["provision"]["period"].update(start="2025-13-01"),
            ".resource.provision.period.start",
            "not a full date",
        ),
        (
            "Patient",
            lambda r: r["identifier"][0].update(value="199103744522"),
            ".resource",
            "check digit",
        ),
        (
            "CarePlan",
            lambda r: r["goal"].append({"reference": "#goal-9"}),
            ".resource.goal[2].reference",
            "not a contained Goal",
        ),
    ],
)
def test_problems_reading_a_bundle_name_the_element(
    bundle_b: dict[str, Any], kind: str, change: Any, expression: str, text: str
) -> None:
    with pytest.raises(OperationOutcomeError) as caught:
        bundle_to_case(broken(bundle_b, kind, change))
    (issue,) = caught.value.issues
    assert issue.expression is not None
    assert issue.expression.startswith("Bundle.entry[")
    assert issue.expression.endswith(expression)
    assert text in issue.diagnostics
    assert caught.value.status == 422 or issue.code.value == "invalid"
    assert caught.value.outcome().issue[0].expression == [issue.expression]


def test_golden_fixture_files_parse_back_to_their_case() -> None:
    for folder in sorted((FIXTURES / "mapping").iterdir()):
        case = fixture_case(folder.name)
        assert bundle_to_case(parse_json((folder / "expected.json").read_bytes())) == case
        assert bundle_to_case(parse_xml((folder / "expected.xml").read_bytes())) == case
