"""The Bundle a case maps to, checked against the profile contract row by row."""

from __future__ import annotations

import copy
import uuid
from typing import Any
from urllib.parse import parse_qsl

import pytest

from reko_fhir.domain import CoordinationCase, SourceRef
from reko_fhir.formats import dump_json, parse_json, parse_xml
from reko_fhir.mapping import MappingError, bundle_to_case, case_to_bundle, case_to_bundle_json
from reko_fhir.mapping.journal import load_mapping, map_file
from tests.golden import FIXTURES, MAPPINGS
from tests.strategies import example_case

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
            lambda r: r["provision"]["period"].update(start="2025-03"),
            ".resource.provision.period.start",
            "not a full date",
        ),
        (
            "Consent",
            lambda r: r["provision"]["period"].update(start="2025-13-01"),
            ".resource.provision.period.start",
            "does not match",
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
    with pytest.raises(MappingError) as caught:
        bundle_to_case(broken(bundle_b, kind, change))
    (issue,) = caught.value.issues
    assert issue.expression is not None
    assert issue.expression.startswith("Bundle.entry[")
    assert issue.expression.endswith(expression)
    assert text in issue.diagnostics
    assert caught.value.status in (400, 422)
    assert caught.value.outcome().issue[0].expression == [issue.expression]


def test_golden_fixture_files_parse_back_to_their_case() -> None:
    for folder in sorted((FIXTURES / "mapping").iterdir()):
        case = fixture_case(folder.name)
        assert bundle_to_case(parse_json((folder / "expected.json").read_bytes())) == case
        assert bundle_to_case(parse_xml((folder / "expected.xml").read_bytes())) == case


# --- The contract, row by row, on a case built by hand (tests.strategies.example_case) ---

PNR = "http://electronichealth.se/identifier/personnummer"
HSA = "urn:oid:1.2.752.29.4.19"
ORG_NUMBER = "urn:oid:2.5.4.97"


@pytest.fixture(scope="module")
def example() -> dict[str, Any]:
    return case_to_bundle_json(example_case())


def url_of(bundle: dict[str, Any], kind: str, system: str, value: str) -> str:
    return next(
        e["fullUrl"]
        for e in bundle["entry"]
        if e["resource"]["resourceType"] == kind
        and e["resource"]["identifier"][0] == {"system": system, "value": value}
    )


def ext(resource: dict[str, Any], name: str) -> list[dict[str, Any]]:
    url = f"{BASE}/StructureDefinition/{name}"
    return [e for e in resource.get("extension", []) if e["url"] == url]


def parts(extension: dict[str, Any]) -> dict[str, Any]:
    """A complex extension's sub-extensions as {url: value}."""
    return {
        sub["url"]: next(v for k, v in sub.items() if k.startswith("value"))
        for sub in extension["extension"]
    }


def test_entry_order_and_conditional_urls(example: dict[str, Any]) -> None:
    assert [
        (e["resource"]["resourceType"], e["request"]["url"].split("|")[1]) for e in example["entry"]
    ] == [
        ("Organization", "SE2321000016-VC01"),
        ("Organization", "2021005521"),
        ("Organization", "5560360793"),
        ("Patient", "197803122386"),
        ("PractitionerRole", "SE2321000016-L002"),
        ("PractitionerRole", "SE2321000016-R001"),
        ("EpisodeOfCare", "CASE-1"),
        ("CareTeam", "CASE-1"),
        ("Consent", "SAM-1"),
        ("Consent", "SAM-2"),
        ("CarePlan", "PLAN-1"),
        ("Procedure", "AKT-1"),
        ("Procedure", "AKT-3"),
        ("Procedure", "AKT-2"),
        ("Communication", "MED-1"),
    ]
    assert example["entry"][3]["request"] == {
        "method": "PUT",
        "url": f"Patient?identifier={PNR}|197803122386",
    }


def test_conditional_urls_percent_encode_what_a_query_cannot_hold() -> None:
    system = "https://journal.example/sid?a=1&b=2+3%,x|y#z"
    bundle = case_to_bundle_json(example_case(source=SourceRef(system, "CASE-1")))
    (episode,) = [e for e in bundle["entry"] if e["resource"]["resourceType"] == "EpisodeOfCare"]
    url = episode["request"]["url"]
    assert url.startswith("EpisodeOfCare?identifier=https://journal.example/sid%3F")
    for raw in "&+#,":
        assert raw not in url
    assert parse_qsl(url.partition("?")[2]) == [("identifier", f"{system}|CASE-1")]


def test_patient_row(example: dict[str, Any]) -> None:
    (patient,) = resources(example, "Patient")
    assert patient["identifier"] == [{"system": PNR, "value": "197803122386"}]
    assert patient["name"] == [{"family": "Åström", "given": ["Märta"]}]


def test_organization_row(example: dict[str, Any]) -> None:
    unit, fk, employer = resources(example, "Organization")
    assert unit["identifier"] == [{"system": HSA, "value": "SE2321000016-VC01"}]
    assert unit["name"] == "Vårdcentralen Ekdalen"
    assert "extension" not in unit
    assert fk["identifier"] == [{"system": ORG_NUMBER, "value": "2021005521"}]
    assert [e["valueCoding"] for e in ext(employer, "actor-type")] == [
        {"system": f"{BASE}/CodeSystem/reko-actor-type", "code": "arbetsgivare"}
    ]


def test_practitioner_role_row(example: dict[str, Any]) -> None:
    roles = {r["identifier"][0]["value"]: r for r in resources(example, "PractitionerRole")}
    reco = roles["SE2321000016-R001"]
    assert reco["identifier"] == [{"system": HSA, "value": "SE2321000016-R001"}]
    assert reco["code"] == [
        {
            "coding": [
                {"system": f"{BASE}/CodeSystem/reko-role", "code": "rehabiliteringskoordinator"}
            ],
            "text": "Rehabkoordinator",
        }
    ]
    unit = url_of(example, "Organization", HSA, "SE2321000016-VC01")
    assert reco["organization"] == {"reference": unit}
    assert reco["practitioner"] == {
        "type": "Practitioner",
        "identifier": {"system": HSA, "value": "SE2321000016-R001"},
        "display": "Karin Öberg",
    }
    assert "display" not in roles["SE2321000016-L002"]["practitioner"]


def test_episode_of_care_row(example: dict[str, Any]) -> None:
    (episode,) = resources(example, "EpisodeOfCare")
    assert episode["status"] == "finished"
    assert [e["valueCoding"]["code"] for e in ext(episode, "reko-status")] == ["avslutad"]
    assert [parts(e) for e in ext(episode, "sick-leave-period")] == [
        {"start": "2025-02-17", "end": "2025-04-13", "degree": 100},
        {"start": "2025-04-14", "degree": 50},
    ]
    assert codes(episode["type"][0], KVA) == ["GC001"]
    assert episode["patient"] == {"reference": example["entry"][3]["fullUrl"]}
    unit = url_of(example, "Organization", HSA, "SE2321000016-VC01")
    assert episode["managingOrganization"] == {"reference": unit}
    assert episode["period"] == {"start": "2025-03-03", "end": "2025-09-30"}
    assert episode["careManager"]["identifier"] == {"system": HSA, "value": "SE2321000016-R001"}
    assert episode["team"] == [{"reference": example["entry"][7]["fullUrl"]}]


def test_care_team_row(example: dict[str, Any]) -> None:
    (team,) = resources(example, "CareTeam")
    unit = url_of(example, "Organization", HSA, "SE2321000016-VC01")
    assert team["managingOrganization"] == [{"reference": unit}]
    assert team["subject"] == {"reference": example["entry"][3]["fullUrl"]}
    members = {p["member"]["reference"]: p["role"][0]["coding"][0] for p in team["participant"]}
    employer = url_of(example, "Organization", ORG_NUMBER, "5560360793")
    assert members[employer] == {
        "system": f"{BASE}/CodeSystem/reko-actor-type",
        "code": "arbetsgivare",
    }
    reco = url_of(example, "PractitionerRole", HSA, "SE2321000016-R001")
    assert members[reco]["code"] == "rehabiliteringskoordinator"


def test_consent_row(example: dict[str, Any]) -> None:
    oral, written = resources(example, "Consent")
    unit = url_of(example, "Organization", HSA, "SE2321000016-VC01")
    for consent in (oral, written):
        assert consent["patient"] == {"reference": example["entry"][3]["fullUrl"]}
        assert consent["organization"] == [{"reference": unit}]
        assert consent["policyRule"]["coding"] == [
            {"system": f"{BASE}/CodeSystem/reko-policy", "code": "sfs-2019-1297"}
        ]
    assert oral["status"] == "active"
    assert oral["dateTime"] == "2025-03-03T10:15:00+01:00"
    assert [e["valueCoding"]["code"] for e in ext(oral, "consent-form")] == ["muntligt"]
    assert oral["provision"] == {"type": "permit", "period": {"start": "2025-03-03"}}
    assert written["status"] == "inactive"
    assert written["provision"]["period"] == {"start": "2025-03-10", "end": "2025-06-02"}
    fk = url_of(example, "Organization", ORG_NUMBER, "2021005521")
    employer = url_of(example, "Organization", ORG_NUMBER, "5560360793")
    assert [a["reference"]["reference"] for a in written["provision"]["actor"]] == [fk, employer]
    assert [parts(h) for h in ext(written, "consent-history")] == [
        {"date": "2025-03-10", "action": "given"},
        {"date": "2025-06-02", "action": "revoked", "note": "Återkallat"},
    ]


def test_careplan_row(example: dict[str, Any]) -> None:
    (plan,) = resources(example, "CarePlan")
    assert plan["status"] == "completed"
    assert plan["period"] == {"start": "2025-03-12", "end": "2025-09-30"}
    assert plan["created"] == "2025-03-12"
    reco = url_of(example, "PractitionerRole", HSA, "SE2321000016-R001")
    assert plan["author"] == {"reference": reco}
    assert plan["careTeam"] == [{"reference": example["entry"][7]["fullUrl"]}]
    assert [(g["id"], g["description"]["text"]) for g in plan["contained"]] == [
        ("goal-1", "Åter i arbete på heltid"),
        ("goal-2", "Anpassade arbetsuppgifter"),
    ]
    step, planned, follow_up = (a["detail"] for a in plan["activity"])
    assert codes(step["code"], KVA) == ["DV077"]
    assert [parts(e) for e in ext(step, "sick-leave-period")] == [
        {"start": "2025-04-14", "end": "2025-05-11", "degree": 50}
    ]
    assert codes(planned["code"], KVA) == ["GC001"]
    assert planned["description"] == "Avstämningsmöte med arbetsgivaren"
    assert planned["scheduledPeriod"] == {"start": "2025-04-08"}
    employer = url_of(example, "Organization", ORG_NUMBER, "5560360793")
    assert planned["performer"] == [{"reference": employer}]
    assert [e["valueCoding"]["code"] for e in ext(planned, "coordination-part")] == [
        "extern-samverkan"
    ]
    assert codes(follow_up["code"], KVA) == ["AW026"]
    assert follow_up["scheduledPeriod"] == {"start": "2025-05-05"}
    # The case is closed (so is the plan): the step ended before the case did, the planned
    # meeting took place (GC001 extern-samverkan with the employer on 2025-04-08), and no AW026
    # was journaled on the follow-up's day (contract 2 fix: not all "scheduled").
    assert [d["status"] for d in (step, planned, follow_up)] == [
        "completed",
        "completed",
        "unknown",
    ]
    assert "addresses" not in plan


def test_procedure_row(example: dict[str, Any]) -> None:
    first, plan_made, meeting = resources(example, "Procedure")
    reco = url_of(example, "PractitionerRole", HSA, "SE2321000016-R001")
    unit = url_of(example, "Organization", HSA, "SE2321000016-VC01")
    assert first["performer"] == [{"actor": {"reference": reco}, "onBehalfOf": {"reference": unit}}]
    assert first["code"]["coding"] == [
        {
            "system": KVA,
            "code": "GC001",
            "display": "Koordineringsinsatser för att främja återgång eller inträde i arbetslivet",
        }
    ]
    assert codes(first["category"], f"{BASE}/CodeSystem/reko-coordination-part") == [
        "personligt-stod"
    ]
    assert first["note"] == [{"text": "Kartläggningssamtal"}]
    assert first["performedDateTime"] == "2025-03-03T10:00:00+01:00"
    assert "category" not in plan_made, "only a coordination part gives a category"
    fk = url_of(example, "Organization", ORG_NUMBER, "2021005521")
    employer = url_of(example, "Organization", ORG_NUMBER, "5560360793")
    assert [e["valueReference"] for e in ext(meeting, "external-actor")] == [
        {"reference": fk},
        {"reference": employer},
    ]
    assert meeting["performedDateTime"] == "2025-04-08T09:00:00+02:00"


def test_communication_row(example: dict[str, Any]) -> None:
    (notice,) = resources(example, "Communication")
    assert notice["status"] == "completed"
    assert notice["sent"] == "2025-03-11T08:05:30+01:00"
    assert notice["recipient"] == [
        {"reference": url_of(example, "Organization", ORG_NUMBER, "2021005521")}
    ]
    assert notice["sender"] == {
        "reference": url_of(example, "PractitionerRole", HSA, "SE2321000016-R001")
    }
    assert notice["payload"] == [{"contentString": "Patienten har behov av rehabilitering"}]


def test_the_example_validates_and_reads_back(example: dict[str, Any]) -> None:
    assert bundle_to_case(example) == example_case()
    assert bundle_to_case(parse_json(dump_json(case_to_bundle(example_case())))) == example_case()
