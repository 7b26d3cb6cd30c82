"""A plan with follow-ups and the Procedures that carry them out, for the router and serve tests
of follow-ups (https://hl7.org/fhir/R4/careplan.html). Built on golden case a's stored Patient,
coordinator (PractitionerRole) and care unit (Organization)."""

from __future__ import annotations

from typing import Any

Json = dict[str, Any]
KVA = "urn:oid:1.2.752.116.1.3.2.1.4"
PART = "http://reko-fhir.se/fhir/CodeSystem/reko-coordination-part"
PART_EXT = "http://reko-fhir.se/fhir/StructureDefinition/coordination-part"
SOURCE = "https://journal.region-exempel.se/sid/rehabkoordinering"


def planned(code: str, day: str, part: str | None = None) -> Json:
    detail: Json = {
        "code": {"coding": [{"system": KVA, "code": code}]},
        "status": "scheduled",
        "scheduledPeriod": {"start": day},
    }
    if part is not None:
        detail["extension"] = [{"url": PART_EXT, "valueCoding": {"system": PART, "code": part}}]
        detail["description"] = "Stödsamtal"
    return {"detail": detail}


def follow_up_plan(patient: str, author: str, record: str = "PLAN-FU-1") -> Json:
    """An active plan: AW026 on 1 March and on 1 February (listed in that order), a GC001
    (personligt stöd) on 15 February."""
    return {
        "resourceType": "CarePlan",
        "meta": {"profile": ["http://reko-fhir.se/fhir/StructureDefinition/RekoCarePlan"]},
        "identifier": [{"system": SOURCE, "value": record}],
        "status": "active",
        "intent": "plan",
        "category": [
            {
                "coding": [
                    {
                        "system": "http://reko-fhir.se/fhir/CodeSystem/reko-careplan-category",
                        "code": "atergang-i-arbete",
                    }
                ]
            }
        ],
        "subject": {"reference": patient},
        "period": {"start": "2026-01-15"},
        "created": "2026-01-15",
        "author": {"reference": author},
        "activity": [
            planned("AW026", "2026-03-01"),
            planned("AW026", "2026-02-01"),
            planned("GC001", "2026-02-15", "personligt-stod"),
        ],
    }


def performed(
    patient: str,
    staff: str,
    unit: str,
    plan: str | None,
    *,
    code: str = "AW026",
    record: str = "J-FU-1",
    part: str | None = None,
) -> Json:
    """A completed Procedure carrying out a follow-up of ``plan`` (``CarePlan/…`` or a fullUrl)."""
    procedure: Json = {
        "resourceType": "Procedure",
        "meta": {"profile": ["http://reko-fhir.se/fhir/StructureDefinition/RekoProcedure"]},
        "identifier": [{"system": SOURCE, "value": record}],
        "status": "completed",
        "code": {"coding": [{"system": KVA, "code": code}]},
        "subject": {"reference": patient},
        "performedDateTime": "2026-02-02T10:00:00+01:00",
        "performer": [{"actor": {"reference": staff}, "onBehalfOf": {"reference": unit}}],
    }
    if plan is not None:
        procedure["basedOn"] = [{"reference": plan}]
    if part is not None:
        procedure["category"] = {"coding": [{"system": PART, "code": part}]}
    return procedure
