"""Importing a care unit's sick-leave certificates into its worklist of Tasks.

Every write is a FHIR interaction through the router on the guarded store, as the unit (see
:mod:`reko_fhir.worklist.unit`): validated against RekoWorklistTask, kept in the unit's
partition, with its Provenance and its access-log record in the write's own transaction. The
Task's business identifier (unit, patient, start) makes it a conditional update, so an
import of the same certificates writes nothing (https://hl7.org/fhir/R4/http.html#cond-update).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date

from reko_fhir.config import Settings
from reko_fhir.domain.identifiers import HsaId, PatientId
from reko_fhir.domain.sjukfall import (
    DEFAULT_MAX_DAYS_BETWEEN,
    MAX_DAYS_BETWEEN_LIMIT,
    Certificate,
    Sjukfall,
    chain_sjukfall,
)
from reko_fhir.mapping import codings as c
from reko_fhir.mapping import worklist as wl
from reko_fhir.rest.router import FhirRouter
from reko_fhir.store import FhirRepository
from reko_fhir.worklist.unit import AsUnit, Json

DEFAULT_FOCUS_DAYS = 90


@dataclass(frozen=True)
class WorklistSettings:
    """``max_days_between``: days allowed between chained certificates (0–90, Rehabstöd's
    ``maxAntalDagarMellanIntyg``); ``focus_days``: how many days from its start a sick leave
    is a candidate (REKO_WORKLIST_MAX_DAYS_BETWEEN, REKO_WORKLIST_FOCUS_DAYS)."""

    max_days_between: int = DEFAULT_MAX_DAYS_BETWEEN
    focus_days: int = DEFAULT_FOCUS_DAYS

    @classmethod
    def from_settings(cls, settings: Settings) -> WorklistSettings:
        """REKO_WORKLIST_MAX_DAYS_BETWEEN and REKO_WORKLIST_FOCUS_DAYS (checked at start-up)."""
        return cls(settings.worklist_max_days_between, settings.worklist_focus_days)

    def __post_init__(self) -> None:
        if not 0 <= self.max_days_between <= MAX_DAYS_BETWEEN_LIMIT:
            raise ValueError(f"max_days_between is 0-{MAX_DAYS_BETWEEN_LIMIT}")
        if self.focus_days < 1:
            raise ValueError("focus_days is at least 1")


@dataclass(frozen=True)
class WorklistChanges:
    """What one import did: Tasks created, updated (still to assess), unchanged, and closed
    by the status they closed with (``completed``, ``cancelled``, ``accepted``); the ids of
    the unit's Tasks the import wrote or found; certificates of other units it skipped."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0
    closed: dict[str, int] = field(default_factory=dict)
    task_ids: tuple[str, ...] = ()
    other_units: int = 0


def wanted_status(sjukfall: Sjukfall, *, in_case: bool, today: date, focus_days: int) -> str:
    """The status the worklist gives a sick leave today: ``accepted`` while the patient has a
    coordination case at the unit, ``completed`` once it ended, ``cancelled`` once out of the
    focus window, else ``requested`` (to assess)."""
    if in_case:
        return wl.ACCEPTED
    if sjukfall.ended(today):
        return wl.COMPLETED
    if not sjukfall.in_focus(today, focus_days):
        return wl.CANCELLED
    return wl.REQUESTED


async def import_sick_leaves(
    repository: FhirRepository,
    unit: HsaId,
    certificates: Sequence[Certificate],
    *,
    today: date,
    settings: WorklistSettings | None = None,
    router: FhirRouter | None = None,
) -> WorklistChanges:
    """Chain ``certificates`` (those of ``unit``) into sick leaves and bring the unit's worklist
    up to date: a Task for each new candidate, each open Task updated or closed, a rejected
    or accepted Task left as it is. ``repository`` is the raw store; ``router`` one to reuse
    (its validation is loaded once)."""
    settings = settings or WorklistSettings()
    own = [x for x in certificates if x.care_unit == unit]
    chained = chain_sjukfall(own, max_days_between=settings.max_days_between, today=today)
    writer = AsUnit(repository, unit, router)
    owner = await writer.ensure(wl.organization_resource(unit), (c.HSA, unit.value))
    stored = {value: task for task in await writer.tasks(owner) if (value := _identifier(task))}
    # The unit's patients and cases, read once (not per sick leave).
    patients = _by_patient_number(await writer.search("Patient", ()))
    in_case = {
        str(e["patient"]["reference"])
        for e in await writer.search("EpisodeOfCare", ())
        if wl.is_open_episode(e) and isinstance(e.get("patient"), dict)
    }
    tally = _Tally()
    seen: set[str] = set()
    for sjukfall in chained:
        value = wl.task_identifier(unit, sjukfall.patient, sjukfall.start)
        seen.add(value)
        before = stored.get(value)
        if before is not None and before.get("status") in wl.FINAL:
            tally.counts["unchanged"] += 1
            tally.ids.append(str(before["id"]))
            continue
        patient = patients.get(sjukfall.patient.value)
        status = wanted_status(
            sjukfall, in_case=patient in in_case, today=today, focus_days=settings.focus_days
        )
        if before is None and status != wl.REQUESTED:
            continue  # not a candidate, and never was one
        if patient is None:
            patient = await writer.ensure(*_patient_resource(sjukfall.patient))
            patients[sjukfall.patient.value] = patient
        task = wl.worklist_task(
            sjukfall, status=status, patient=patient, owner=owner, before=before
        )
        await _write(writer, value, task, before, tally)
    for value, before in stored.items():
        if value not in seen and before.get("status") == wl.REQUESTED:
            # Gone from the unit's active sick leaves: the sick leave ended.
            task = {k: v for k, v in before.items() if k != "meta"} | {"status": wl.COMPLETED}
            await _write(writer, value, task, before, tally)
    return WorklistChanges(
        created=tally.counts["created"],
        updated=tally.counts["updated"],
        unchanged=tally.counts["unchanged"],
        closed=dict(tally.closed),
        task_ids=tuple(tally.ids),
        other_units=len(certificates) - len(own),
    )


def _identifier(task: Json) -> str | None:
    for identifier in task.get("identifier") or []:
        if isinstance(identifier, dict) and identifier.get("system") == wl.WORKLIST_SYSTEM:
            value = identifier.get("value")
            return value if isinstance(value, str) else None
    return None


@dataclass
class _Tally:
    counts: Counter[str] = field(default_factory=Counter)
    closed: Counter[str] = field(default_factory=Counter)
    ids: list[str] = field(default_factory=list)


async def _write(
    writer: AsUnit, value: str, task: Json, before: Json | None, tally: _Tally
) -> None:
    """Store ``task`` unless ``before`` says the same already, and count what happened. A Task
    is updated only at the version read (If-Match): a coordinator's or a case's change in
    between wins, and the next import sees it."""
    counts, closed, ids = tally.counts, tally.closed, tally.ids
    if before is not None and _content(before) == _content(task):
        counts["unchanged"] += 1
        ids.append(str(before["id"]))
        return
    version = (before or {}).get("meta", {}).get("versionId")
    written = await writer.put_task(value, task, version=version, task_id=(before or {}).get("id"))
    if written is None:
        counts["unchanged"] += 1  # changed meanwhile: left for the next import
        ids.append(str((before or {}).get("id")))
        return
    ids.append(str(written["id"]))
    if before is None:
        counts["created"] += 1
    elif written.get("status") != wl.REQUESTED and before.get("status") == wl.REQUESTED:
        closed[str(written["status"])] += 1
    else:
        counts["updated"] += 1


def _content(task: Json) -> Json:
    return {k: v for k, v in task.items() if k not in ("id", "meta")}


def _by_patient_number(patients: list[Json]) -> dict[str, str]:
    """personnummer (or samordningsnummer) → ``Patient/<id>`` of the unit's Patients."""
    systems = set(c.PATIENT_ID_SYSTEMS.values())
    return {
        str(identifier["value"]): f"Patient/{patient['id']}"
        for patient in patients
        for identifier in patient.get("identifier") or []
        if isinstance(identifier, dict) and identifier.get("system") in systems
    }


def _patient_resource(patient: PatientId) -> tuple[Json, tuple[str, str]]:
    """The unit's Patient for a certificate's patient, and the identifier that finds it."""
    return wl.patient_resource(patient), (c.PATIENT_ID_SYSTEMS[patient.kind], patient.value)
