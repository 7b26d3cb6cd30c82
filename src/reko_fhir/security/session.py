"""One unit of work of a guarded caller: :class:`GuardedSession`.

The write rules of :mod:`reko_fhir.security.guard`'s repository, inside the unit: a Provenance
is server-written; a unit's records are about a Patient of its own partition; its directory
(Organization, PractitionerRole) speaks only for that unit; a PractitionerRole stays at its
care unit; a coordination case accepts the unit's open worklist Tasks for its patient
(contract 2); and every change gets its Provenance (https://hl7.org/fhir/R4/provenance.html).
The access-log record of the unit's writes (:func:`write_record`) commits with them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from reko_fhir.mapping import codings as c
from reko_fhir.mapping import worklist as wl
from reko_fhir.outcomes import IssueCode, OperationOutcomeError, error
from reko_fhir.security.audit import MOST_ENTITIES, AccessRecord
from reko_fhir.security.tokens import Principal
from reko_fhir.store import MATCH_LIMIT, FhirSession, Search, Stored, not_found
from reko_fhir.store.context import PatientRows
from reko_fhir.store.repository import Change
from reko_fhir.validation.store_rules import patient_rows_of

Json = dict[str, Any]
PARTICIPANT = "http://terminology.hl7.org/CodeSystem/provenance-participant-type"
DATA_OPERATION = "http://terminology.hl7.org/CodeSystem/v3-DataOperation"


def forbidden(message: str) -> OperationOutcomeError:
    return OperationOutcomeError([error(IssueCode.FORBIDDEN, message, None)], status=403)


class GuardedSession:
    """One unit of work of a guarded caller: the inner session's interactions, plus the write
    rules and a Provenance for every change."""

    def __init__(self, inner: FhirSession, principal: Principal) -> None:
        self.inner = inner
        self.principal = principal
        self.changes = inner.changes
        self.audit = inner.audit
        self.partitions = inner.partitions
        # What the unit's writes matched or returned unchanged (a conditional create that found
        # its resource, a no-op update): in the write's access-log record beside the changes.
        self.touched: list[Stored] = []
        # The current resources the unit has matched, written or read, by type and id (None:
        # none the caller reads): every entry of a case names the same Patient, every
        # PractitionerRole the same Organization, and the consent rules read what the Bundle's
        # conditions matched, so each is read once a unit or not at all. The unit's own writes
        # and deletes keep it up to date; what readers get, they never changed (nor change).
        self._current: dict[tuple[str, str], Stored | None] = {}

    async def read(self, resource_type: str, resource_id: str) -> Stored:
        return await self.inner.read(resource_type, resource_id)

    async def search(self, resource_type: str, search: Search) -> list[Stored]:
        return await self.inner.search(resource_type, search)

    async def one_match(self, resource_type: str, condition: Search) -> Stored | None:
        found = await self.inner.one_match(resource_type, condition)
        if found is not None:
            self.touched.append(found)
            self._own(found)
        return found

    async def about_patient(self, patient: str, types: tuple[str, ...]) -> list[Stored]:
        return await self.inner.about_patient(patient, types)

    async def patient_rows(
        self, patient: str, types: tuple[str, ...], roles: list[str], organizations: list[str]
    ) -> PatientRows:
        """The consent rules' reads in one query, where the session wrapped offers it; the
        Patient it read is the one :meth:`_patient_of_own_unit` then looks at."""
        rows = await patient_rows_of(self.inner, patient, types, roles, organizations)
        if rows.subject is not None:
            patient_id, found = rows.subject
            self._current.setdefault(("Patient", patient_id), found)
        return rows

    async def read_current(self, resource_type: str, ids: list[str]) -> list[Stored]:
        """As the inner session's, in the order of ``ids``; only what the unit has not seen
        yet is read."""
        wanted = list(dict.fromkeys(ids))
        missing = [i for i in wanted if (resource_type, i) not in self._current]
        if missing:
            found = {s.id: s for s in await self.inner.read_current(resource_type, missing)}
            for i in missing:
                self._current[(resource_type, i)] = found.get(i)
        known = (self._current[(resource_type, i)] for i in wanted)
        return [s for s in known if s is not None]

    async def one_match_each(
        self, conditions: Sequence[tuple[str, Search]], known: Sequence[Stored | None] = ()
    ) -> list[Stored | None]:
        found = await self.inner.one_match_each(conditions, known)
        for stored in found:
            if stored is not None:
                self.touched.append(stored)
                self._own(stored)
        return found

    def still_unmatched(self, resource_type: str, condition: Search) -> None:
        self.inner.still_unmatched(resource_type, condition)

    def unchanged(self, resource: Json, current: Stored) -> Stored | None:
        return self.inner.unchanged(resource, current)

    async def create(
        self, resource: Json, *, condition: Search | None = None, resource_id: str | None = None
    ) -> Stored:
        self._check(resource)
        await self._directory_of_own_unit(resource)
        await self._patient_of_own_unit(resource)
        stored = await self.inner.create(resource, condition=condition, resource_id=resource_id)
        self.touched.append(stored)
        self._own(stored)
        if stored.created:
            await self._provenance(stored, "CREATE")
            await self._accept_candidates(stored)
        return stored

    async def update(self, resource: Json, *, if_match: int | None = None) -> Stored:
        self._check(resource)
        before = await self._own_current(resource)
        await self._directory_of_own_unit(resource)
        await self._patient_of_own_unit(resource)
        _stays_at_unit(resource, before)
        stored = await self.inner.update(resource, if_match=if_match)
        self.touched.append(stored)
        self._own(stored)
        if not stored.unchanged:
            await self._provenance(stored, "UPDATE")
            await self._accept_candidates(stored)
        return stored

    async def update_match(
        self, resource: Json, condition: Search, existing: Stored | None
    ) -> Stored:
        self._check(resource)
        await self._directory_of_own_unit(resource)
        await self._patient_of_own_unit(resource)
        _stays_at_unit(resource, existing)
        # A resend's entry: the match (read on this unit) says the same, nothing to read again.
        same = self.inner.unchanged(resource, existing) if existing is not None else None
        stored = same or await self.inner.update_match(resource, condition, existing)
        self.touched.append(stored)
        self._own(stored)
        if stored.created or not stored.unchanged:
            await self._provenance(stored, "CREATE" if stored.created else "UPDATE")
            await self._accept_candidates(stored)
        return stored

    async def delete(self, resource_type: str, resource_id: str) -> int | None:
        self._check({"resourceType": resource_type})
        version = await self.inner.delete(resource_type, resource_id)
        if version is not None:  # a tombstone now: no current resource
            self._current[(resource_type, resource_id)] = None
        return version

    def _own(self, stored: Stored) -> None:
        """``stored``, matched or written by this unit, is the current version (in the own
        partition, which the caller reads)."""
        kind = str(stored.resource["resourceType"])
        reads = self.partitions.reads(kind)
        if stored.partition == self.partitions.own and (reads is None or stored.partition in reads):
            self._current[(kind, stored.id)] = replace(stored, created=False, unchanged=False)

    async def _current_of(self, kind: str, resource_id: str) -> Stored | None:
        found = await self.read_current(kind, [resource_id])
        return found[0] if found else None

    def _check(self, resource: Json) -> None:
        if resource.get("resourceType") == "Provenance":
            raise forbidden("Provenance is written by the server, with each change")

    async def _own_current(self, resource: Json) -> Stored | None:
        """The current version an update replaces, when this unit holds it. What another unit
        holds answers 404 before any rule speaks, as an id that never existed does (another
        unit's directory entry is readable, not ours to write)."""
        kind, resource_id = str(resource.get("resourceType")), resource.get("id")
        if not isinstance(resource_id, str):
            return None  # the store refuses an update without an id
        found = await self._current_of(kind, resource_id)
        if found is not None and found.partition != self.inner.partitions.own:
            raise not_found(kind, resource_id)
        return found

    async def _patient_of_own_unit(self, resource: Json) -> None:
        """A unit's record is about a Patient of its own partition: naming another unit's
        Patient id (or one that does not exist) would attach to that patient's record."""
        for element in ("patient", "subject", "for"):
            reference = (resource.get(element) or {}).get("reference")
            if not isinstance(reference, str) or not reference.startswith("Patient/"):
                continue
            found = await self._current_of("Patient", reference.split("/", 1)[1])
            if found is None or found.partition != self.inner.partitions.own:
                kind = resource.get("resourceType")
                message = f"{reference} is not known in this care unit"
                raise _unprocessable(message, f"{kind}.{element}")

    async def _directory_of_own_unit(self, resource: Json) -> None:
        """A unit's directory speaks only for that unit: an Organization with the HSA-id of a
        care unit whose own Organization is stored (in its own partition) is that unit's, not
        another's to write; a PractitionerRole works at an Organization of the writer's own
        partition (profile contract 2: one person at one care unit). Else one unit could spoof
        another's directory entries."""
        own = self.inner.partitions.own
        kind = resource.get("resourceType")
        if kind == "Organization":
            for identifier in resource.get("identifier") or []:
                if not isinstance(identifier, dict):
                    continue  # validation names the broken element
                value = identifier.get("value")
                if identifier.get("system") not in c.HSA_SYSTEMS or value in (None, own):
                    continue
                token = f"{identifier['system']}|{value}"
                held = await self.inner.search("Organization", Search((("identifier", token),)))
                if any(s.partition == value for s in held):
                    message = f"the Organization {value} is that care unit's own, not {own}'s"
                    raise _unprocessable(message, "Organization.identifier")
        if kind == "PractitionerRole":
            reference = (resource.get("organization") or {}).get("reference")
            if isinstance(reference, str) and reference.startswith("Organization/"):
                found = await self._current_of("Organization", reference.split("/")[1])
                if found is not None and found.partition != own:
                    message = (
                        f"a PractitionerRole works at an Organization of its own care unit "
                        f"({own}); {reference} is another unit's"
                    )
                    raise _unprocessable(message, "PractitionerRole.organization")

    async def _accept_candidates(self, stored: Stored) -> None:
        """A coordination case going on for a patient: the unit's worklist Tasks still to
        assess for that patient become ``accepted`` (contract 2), each with its Provenance."""
        patient = (stored.resource.get("patient") or {}).get("reference")
        if not wl.is_open_episode(stored.resource) or not isinstance(patient, str):
            return
        open_tasks = Search(
            (("patient", patient), ("code", wl.TASK_TOKEN), ("status", wl.REQUESTED)),
            MATCH_LIMIT,
        )
        for task in await self.inner.search("Task", open_tasks):
            if task.partition == self.inner.partitions.own:
                await self.update(wl.accepted(task.resource))

    async def _provenance(self, stored: Stored, activity: str) -> None:
        provenance = provenance_of(self.principal, stored, activity)
        if provenance is not None:
            await self.inner.create(provenance)


def _stays_at_unit(resource: Json, before: Stored | None) -> None:
    """A PractitionerRole is one person at one care unit (profile contract 2): no write moves
    the unit's own (``before``, the version it replaces) to another organisation."""
    if resource.get("resourceType") != "PractitionerRole" or before is None:
        return
    was = (before.resource.get("organization") or {}).get("reference")
    now = (resource.get("organization") or {}).get("reference")
    if was and now != was:
        message = (
            f"a PractitionerRole stays at its care unit: organization is {was}; "
            "the same person at another unit is another PractitionerRole"
        )
        raise _unprocessable(message, "PractitionerRole.organization")


def _unprocessable(message: str, expression: str) -> OperationOutcomeError:
    return OperationOutcomeError([error(IssueCode.BUSINESS_RULE, message, expression)], status=422)


def provenance_of(principal: Principal, stored: Stored, activity: str) -> Json | None:
    """Who wrote it, for which unit, from which system (https://hl7.org/fhir/R4/provenance.html)."""
    kind = stored.resource["resourceType"]
    if kind == "Provenance":
        return None
    author: Json = {
        "type": _coding(PARTICIPANT, "author"),
        "who": {"identifier": {"system": c.HSA, "value": principal.subject}},
    }
    unit = principal.care_unit or (stored.partition or None)
    if unit:
        author["onBehalfOf"] = {"identifier": {"system": c.HSA, "value": unit}}
    agents = [author]
    if principal.client_id:
        agents.append(
            {"type": _coding(PARTICIPANT, "assembler"), "who": {"display": principal.client_id}}
        )
    return {
        "resourceType": "Provenance",
        "target": [{"reference": f"{kind}/{stored.id}/_history/{stored.version}"}],
        "recorded": stored.last_updated.isoformat(),
        "activity": _coding(DATA_OPERATION, activity),
        "agent": agents,
    }


def write_record(
    template: AccessRecord, changes: list[Change], touched: list[Stored]
) -> AccessRecord:
    """The request's record (with what the request named) and the patients and resources its
    writes changed or matched, each with the patient it is about."""
    patients: set[str] = set(template.patients)
    entities: list[str] = list(template.entities)
    written = [
        (c.resource_type, c.resource_id, c.resource if c.resource is not None else c.before)
        for c in changes
    ]
    written += [(str(s.resource["resourceType"]), s.id, s.resource) for s in touched]
    for kind, rid, content in written:
        if kind == "Provenance":
            continue
        ref = f"{kind}/{rid}"
        if kind == "Patient":
            patients.add(ref)
        else:
            entities.append(ref)
        for element in ("subject", "patient", "for"):
            target = ((content or {}).get(element) or {}).get("reference")
            if isinstance(target, str) and target.startswith("Patient/") and target.count("/") == 1:
                patients.add(target)
    return replace(
        template,
        patients=tuple(sorted(p for p in patients if len(p) <= 128)),
        entities=tuple(sorted(set(entities))[:MOST_ENTITIES]),
        recorded=datetime.now(UTC),
    )


def _coding(system: str, code: str) -> Json:
    return {"coding": [{"system": system, "code": code}]}
