"""The early-identification worklist's FHIR shapes (contract 2, profile ``RekoWorklistTask``).

One ``Task`` per patient and sick leave at a care unit (https://hl7.org/fhir/R4/task.html):
``code`` reko-task#tidig-identifiering, ``for`` the Patient, ``owner`` the unit's Organization,
``input`` the sick leave's start, current degree and length in days. Never a diagnosis. Pure:
the functions build and read JSON, the worklist and the guard do the storing.
"""

from __future__ import annotations

import hashlib
from datetime import date
from typing import Any

from reko_fhir.domain import HsaId, PatientId, RekoStatus
from reko_fhir.domain.sjukfall import Sjukfall
from reko_fhir.mapping import codings as c

Json = dict[str, Any]
WORKLIST_SYSTEM = f"{c.BASE}/worklist"
"""The Tasks' business identifier: one value per unit, patient and sick-leave start."""
TASK_CODE = "tidig-identifiering"
TASK_TOKEN = f"{c.CS_TASK}|{TASK_CODE}"
REQUESTED, ACCEPTED, REJECTED = "requested", "accepted", "rejected"
COMPLETED, CANCELLED = "completed", "cancelled"
FINAL = frozenset({ACCEPTED, REJECTED})
"""Statuses an import never changes: a case was started, or a coordinator said no."""
OPEN_EPISODE = frozenset({"planned", "waitlist", "active", "onhold"})
"""EpisodeOfCare statuses of a coordination case still going on (mapping.episode)."""
START, DEGREE, DAYS = "sjukfall-start", "sjukskrivningsgrad", "sjukfall-dagar"


def task_identifier(unit: HsaId, patient: PatientId, start: date) -> str:
    """The Task's identifier value. A digest, so the personnummer is not in it (identifiers
    travel in URLs and logs)."""
    text = f"{unit.value}|{patient.value}|{start.isoformat()}"
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def identifier_token(value: str) -> str:
    return f"{WORKLIST_SYSTEM}|{value}"


def _input(code: str, value: Json) -> Json:
    return {"type": c.concept(c.CS_TASK_INPUT, code), **value}


def worklist_task(
    sjukfall: Sjukfall,
    *,
    status: str,
    patient: str,
    owner: str,
    before: Json | None = None,
) -> Json:
    """The Task of ``sjukfall`` with ``status``; ``patient`` and ``owner`` are references
    (``Patient/…``, ``Organization/…``). ``before`` is the stored Task: what a coordinator wrote
    in it (a statusReason, notes) is kept."""
    kept = {k: v for k, v in (before or {}).items() if k not in ("meta", "input", "status")}
    value = task_identifier(sjukfall.care_unit, sjukfall.patient, sjukfall.start)
    return {
        **kept,
        "resourceType": "Task",
        "meta": {"profile": [c.PROFILE_WORKLIST_TASK]},
        "identifier": [c.identifier(WORKLIST_SYSTEM, value)],
        "status": status,
        "intent": "proposal",
        "code": c.concept(c.CS_TASK, TASK_CODE),
        "for": {"reference": patient},
        "owner": {"reference": owner},
        "input": [
            _input(START, {"valueDate": sjukfall.start.isoformat()}),
            _input(DEGREE, {"valueInteger": sjukfall.degree}),
            _input(DAYS, {"valueInteger": sjukfall.length_days}),
        ],
    }


def task_input(task: Json, code: str) -> Any:
    """The value of the Task's input ``code`` (None when it has none)."""
    for item in task.get("input") or []:
        codings = (item.get("type") or {}).get("coding") or [] if isinstance(item, dict) else []
        if any(x.get("system") == c.CS_TASK_INPUT and x.get("code") == code for x in codings):
            return next((v for k, v in item.items() if k.startswith("value")), None)
    return None


def is_worklist_task(resource: Json) -> bool:
    codings = (resource.get("code") or {}).get("coding") or []
    return resource.get("resourceType") == "Task" and any(
        isinstance(x, dict) and x.get("system") == c.CS_TASK and x.get("code") == TASK_CODE
        for x in codings
    )


def accepted(task: Json) -> Json:
    """The Task once a coordination case started for its patient at its unit."""
    return {**{k: v for k, v in task.items() if k != "meta"}, "status": ACCEPTED}


def is_open_episode(episode: Json) -> bool:
    return episode.get("resourceType") == "EpisodeOfCare" and episode.get("status") in OPEN_EPISODE


def reko_status(episode: Json | None) -> RekoStatus:
    """The REKO status an EpisodeOfCare carries (its reko-status extension); ``ingen`` without
    one (no case: Rehabstöd's REKO_1)."""
    for extension in (episode or {}).get("extension") or []:
        if isinstance(extension, dict) and extension.get("url") == c.EXT_STATUS:
            code = (extension.get("valueCoding") or {}).get("code")
            try:
                return RekoStatus(str(code))
            except ValueError:
                continue
    return RekoStatus.INGEN


def patient_resource(patient: PatientId) -> Json:
    """A minimal RekoPatient: the personnummer (or samordningsnummer) the certificate names."""
    return {
        "resourceType": "Patient",
        "meta": c.profile("Patient"),
        "identifier": [c.identifier(c.PATIENT_ID_SYSTEMS[patient.kind], patient.value)],
    }


def organization_resource(unit: HsaId) -> Json:
    """A minimal RekoOrganization of a care unit: its HSA-id."""
    return {
        "resourceType": "Organization",
        "meta": c.profile("Organization"),
        "identifier": [c.identifier(c.HSA, unit.value)],
        "active": True,
    }
