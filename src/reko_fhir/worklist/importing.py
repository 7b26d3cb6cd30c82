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
    counts: Counter[str] = Counter()
    closed: Counter[str] = Counter()
    ids: list[str] = []
    seen: set[str] = set()
    for sjukfall in chained:
        value = wl.task_identifier(unit, sjukfall.patient, sjukfall.start)
        seen.add(value)
        before = stored.get(value)
        if before is not None and before.get("status") in wl.FINAL:
            counts["unchanged"] += 1
            ids.append(str(before["id"]))
            continue
        patient = await writer.find("Patient", _patient_resource(sjukfall.patient)[1])
        in_case = patient is not None and await writer.in_case(patient)
        status = wanted_status(
            sjukfall, in_case=in_case, today=today, focus_days=settings.focus_days
        )
        if before is None and status != wl.REQUESTED:
            continue  # not a candidate, and never was one
        reference = patient or await writer.ensure(*_patient_resource(sjukfall.patient))
        task = wl.worklist_task(
            sjukfall, status=status, patient=reference, owner=owner, before=before
        )
        written = await writer.put_task(value, task)
        ids.append(str(written["id"]))
        _count(before, written, counts, closed)
    for value, before in stored.items():
        if value not in seen and before.get("status") == wl.REQUESTED:
            # Gone from the unit's active sick leaves: the sick leave ended.
            task = {k: v for k, v in before.items() if k != "meta"} | {"status": wl.COMPLETED}
            written = await writer.put_task(value, task)
            ids.append(str(written["id"]))
            _count(before, written, counts, closed)
    return WorklistChanges(
        created=counts["created"],
        updated=counts["updated"],
        unchanged=counts["unchanged"],
        closed=dict(closed),
        task_ids=tuple(ids),
        other_units=len(certificates) - len(own),
    )


def _identifier(task: Json) -> str | None:
    for identifier in task.get("identifier") or []:
        if isinstance(identifier, dict) and identifier.get("system") == wl.WORKLIST_SYSTEM:
            value = identifier.get("value")
            return value if isinstance(value, str) else None
    return None


def _count(before: Json | None, written: Json, counts: Counter[str], closed: Counter[str]) -> None:
    if before is None:
        counts["created"] += 1
    elif (before.get("meta") or {}).get("versionId") == (written.get("meta") or {}).get(
        "versionId"
    ):
        counts["unchanged"] += 1
    elif written.get("status") != wl.REQUESTED and before.get("status") == wl.REQUESTED:
        closed[str(written["status"])] += 1
    else:
        counts["updated"] += 1


def _patient_resource(patient: PatientId) -> tuple[Json, tuple[str, str]]:
    """The unit's Patient for a certificate's patient, and the identifier that finds it."""
    return wl.patient_resource(patient), (c.PATIENT_ID_SYSTEMS[patient.kind], patient.value)
