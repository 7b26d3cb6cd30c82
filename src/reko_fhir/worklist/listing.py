"""Reading a care unit's worklist: its Tasks with the patient, the sick leave and the patient's
REKO status at the unit (with Rehabstöd's id), read through the guard as the unit and logged in
the access log like a search of the API."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any

from reko_fhir.domain import HsaId, RekoStatus
from reko_fhir.mapping import codings as c
from reko_fhir.mapping import worklist as wl
from reko_fhir.rest.router import FhirRouter
from reko_fhir.security.audit import MOST_ENTITIES, AccessRecord
from reko_fhir.store import FhirRepository
from reko_fhir.worklist.unit import AsUnit, Json

AccessLogWriter = Callable[[AccessRecord], Awaitable[Any]]
EVERY_STATUS = "all"


@dataclass(frozen=True, slots=True)
class WorklistRow:
    """One line of the worklist. ``patient`` is the personnummer: the coordinator calls the
    patient with it (it is shown, never logged)."""

    task: str
    status: str
    patient: str
    start: str
    degree: int | None
    days: int | None
    reko_status: RekoStatus
    reason: str | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "status": self.status,
            "patient": self.patient,
            "start": self.start,
            "degree": self.degree,
            "days": self.days,
            "reko_status": self.reko_status.value,
            "rehabstod_status": self.reko_status.rehabstod_id,
            "reason": self.reason,
        }


async def read_worklist(
    repository: FhirRepository,
    unit: HsaId,
    *,
    status: str = wl.REQUESTED,
    router: FhirRouter | None = None,
    log: AccessLogWriter | None = None,
) -> list[WorklistRow]:
    """The unit's worklist Tasks with ``status`` (``all``: every one), by sick-leave start."""
    reader = AsUnit(repository, unit, router)
    owner = await reader.find("Organization", (c.HSA, unit.value))
    if owner is None:
        return []  # nothing was ever imported for the unit
    query: tuple[tuple[str, str], ...] = (("owner", owner), ("code", wl.TASK_TOKEN))
    if status != EVERY_STATUS:
        query += (("status", status),)
    tasks = await reader.search("Task", (*query, ("_sort", "sick-leave-start")))
    shown = sorted({t["for"]["reference"] for t in tasks})
    patients: dict[str, Json] = {}
    for first in range(0, len(shown), 100):
        ids = ",".join(ref.split("/")[1] for ref in shown[first : first + 100])
        patients |= {
            f"Patient/{p['id']}": p for p in await reader.search("Patient", (("_id", ids),))
        }
    episodes = _newest_episodes(await reader.search("EpisodeOfCare", ()))
    rows = [_row(t, patients, episodes) for t in tasks]
    if log is not None:
        record = reader.record("R", "search-type", "&".join(f"{k}={v}" for k, v in query))
        entities = sorted(f"Task/{t['id']}" for t in tasks)[:MOST_ENTITIES]
        await log(replace(record, patients=tuple(shown), entities=tuple(entities)))
    return rows


def _newest_episodes(episodes: list[Json]) -> dict[str, Json]:
    """Per patient the case that says their REKO status now: an open one before a closed
    one, then the latest started."""
    newest: dict[str, Json] = {}
    for episode in sorted(
        episodes,
        key=lambda e: (wl.is_open_episode(e), str((e.get("period") or {}).get("start", ""))),
    ):
        patient = (episode.get("patient") or {}).get("reference")
        if isinstance(patient, str):
            newest[patient] = episode
    return newest


def _personnummer(patient: Json | None) -> str:
    for identifier in (patient or {}).get("identifier") or []:
        if identifier.get("system") in c.PATIENT_ID_SYSTEMS.values():
            return str(identifier.get("value", ""))
    return ""


def _row(task: Json, patients: dict[str, Json], episodes: dict[str, Json]) -> WorklistRow:
    patient = task["for"]["reference"]
    reason = ((task.get("statusReason") or {}).get("coding") or [{}])[0].get("code")
    return WorklistRow(
        task=str(task["id"]),
        status=str(task["status"]),
        patient=_personnummer(patients.get(patient)),
        start=str(wl.task_input(task, wl.START)),
        degree=wl.task_input(task, wl.DEGREE),
        days=wl.task_input(task, wl.DAYS),
        reko_status=wl.reko_status(episodes.get(patient)),
        reason=reason,
    )
