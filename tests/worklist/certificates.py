"""Sick-leave certificates for the worklist tests, built like the RIVTA client's answers."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from reko_fhir.delivery.rivta.sick_leaves import ActiveSickLeave
from reko_fhir.domain import HsaId, KvaCode, PatientId, SickLeavePeriod, luhn_check_digit
from reko_fhir.mapping import codings as c

UNIT = HsaId("SE2321000016-E001")
OTHER_UNIT = HsaId("SE2321000016-E002")
DOCTOR = HsaId("SE2321000016-D001")
TODAY = date(2026, 3, 2)


def patient(n: int) -> PatientId:
    """A valid personnummer per ``n`` (born 1980, serial n)."""
    first = f"19800101{n:03d}"
    return PatientId(first + str(luhn_check_digit(first[2:])))


def certificate(
    cid: str,
    who: PatientId,
    start: date,
    end: date | None,
    degree: int = 100,
    unit: HsaId = UNIT,
) -> ActiveSickLeave:
    return ActiveSickLeave(cid, who, unit, DOCTOR, (SickLeavePeriod(start, end, degree),))


def days_ago(n: int) -> date:
    return TODAY - timedelta(days=n)


def episode(patient_ref: str, owner: str, status: str = "active") -> dict[str, Any]:
    """A RekoEpisodeOfCare: a coordination case of the patient at the unit."""
    return {
        "resourceType": "EpisodeOfCare",
        "meta": c.profile("EpisodeOfCare"),
        "extension": [{"url": c.EXT_STATUS, "valueCoding": c.coding(c.CS_STATUS, "aktiv")}],
        "identifier": [c.identifier("urn:example:case", "1")],
        "status": status,
        "type": [c.kva(KvaCode.GC001)],
        "patient": {"reference": patient_ref},
        "managingOrganization": {"reference": owner},
        "period": {"start": TODAY.isoformat()},
        "careManager": {
            "type": "Practitioner",
            "identifier": c.identifier(c.HSA, "SE2321000016-K001"),
        },
    }
