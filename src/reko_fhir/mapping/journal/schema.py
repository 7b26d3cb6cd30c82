"""The fields a journal mapping fills: the one vocabulary every mapping file maps onto.

A mapping file names, for each record kind below, how to select its records in the export and
where each field is. The engine knows the type of every field, whether it is required, and which
translation table turns the journal's local wording into the contract's codes.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class FieldType(StrEnum):
    TEXT = "text"
    DATE = "date"
    DATETIME = "datetime"
    INT = "int"
    PATIENT_ID = "patient-id"
    HSA_ID = "hsa-id"
    ORG_NUMBER = "org-number"
    CODE = "code"  # translated through a table
    REF = "ref"  # a key of another record in the same case


@dataclass(frozen=True, slots=True)
class FieldDef:
    type: FieldType
    required: bool = False
    table: str | None = None
    many: bool = False


def _f(
    kind: FieldType, *, required: bool = False, table: str | None = None, many: bool = False
) -> FieldDef:
    return FieldDef(kind, required, table, many)


T, D, DT = FieldType.TEXT, FieldType.DATE, FieldType.DATETIME

TABLES: dict[str, str] = {
    "reko_status": "local case status → reko-status code",
    "role": "local staff title → reko-role code",
    "actor_type": "local actor kind → reko-actor-type code",
    "consent_form": "local consent wording → muntligt | skriftligt",
    "consent_change": "local consent event → given | actors-changed | revoked",
    "activity_code": "local activity code → {kva: GC001|DV077|AW026, part: coordination part}",
    "activity_status": "local activity status → Procedure status",
    "careplan_category": "local plan kind → atergang-i-arbete | intrade-i-arbetslivet",
}

CASE_FIELDS: dict[str, FieldDef] = {
    "record_id": _f(T, required=True),
    "personnummer": _f(FieldType.PATIENT_ID, required=True),
    "family": _f(T),
    "given": _f(T),
    "unit_hsa_id": _f(FieldType.HSA_ID, required=True),
    "unit_name": _f(T, required=True),
    "status": _f(FieldType.CODE, required=True, table="reko_status"),
    "start": _f(D, required=True),
    "end": _f(D),
    "coordinator": _f(FieldType.HSA_ID, required=True),
}

RECORD_FIELDS: dict[str, dict[str, FieldDef]] = {
    "sick_leave": {
        "start": _f(D, required=True),
        "end": _f(D),
        "degree": _f(FieldType.INT, required=True),
    },
    "staff": {
        "hsa_id": _f(FieldType.HSA_ID, required=True),
        "title": _f(FieldType.CODE, required=True, table="role"),
        "name": _f(T),
    },
    "actors": {
        "key": _f(T, required=True),
        "org_number": _f(FieldType.ORG_NUMBER, required=True),
        "type": _f(FieldType.CODE, required=True, table="actor_type"),
        "name": _f(T, required=True),
    },
    "consents": {
        "record_id": _f(T, required=True),
        "form": _f(FieldType.CODE, required=True, table="consent_form"),
        "recorded_at": _f(DT, required=True),
        "valid_from": _f(D, required=True),
        "actors": _f(FieldType.REF, many=True),
    },
    "consent_changes": {
        "consent": _f(FieldType.REF, required=True),
        "on": _f(D, required=True),
        "kind": _f(FieldType.CODE, required=True, table="consent_change"),
        "note": _f(T),
    },
    "team": {
        "member": _f(FieldType.REF, required=True),
    },
    "plan": {
        "record_id": _f(T, required=True),
        "author": _f(FieldType.HSA_ID, required=True),
        "created": _f(D, required=True),
        "start": _f(D, required=True),
        "end": _f(D),
        "category": _f(FieldType.CODE, table="careplan_category"),
    },
    "plan_goals": {"text": _f(T, required=True)},
    "plan_steps": {
        "start": _f(D, required=True),
        "end": _f(D),
        "degree": _f(FieldType.INT, required=True),
    },
    "plan_activities": {
        "description": _f(T, required=True),
        "code": _f(FieldType.CODE, required=True, table="activity_code"),
        "planned_on": _f(D),
        "actor": _f(FieldType.REF),
    },
    "follow_ups": {"on": _f(D, required=True)},
    "activities": {
        "record_id": _f(T, required=True),
        "code": _f(FieldType.CODE, required=True, table="activity_code"),
        "performed": _f(DT, required=True),
        "performer": _f(FieldType.HSA_ID, required=True),
        "actors": _f(FieldType.REF, many=True),
        "note": _f(T),
        "status": _f(FieldType.CODE, table="activity_status"),
    },
    "notices": {
        "record_id": _f(T, required=True),
        "sent": _f(DT, required=True),
        "sender": _f(FieldType.HSA_ID, required=True),
        "recipient": _f(FieldType.REF, required=True),
        "text": _f(T),
    },
}
"""Record kinds and their fields. Only ``staff`` is required in a mapping; the rest may be absent
when a journal system does not export them."""

REQUIRED_KINDS = frozenset({"staff"})
