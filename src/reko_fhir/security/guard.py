"""The store as one request's caller may use it: :class:`GuardedRepository`.

Access control as a decorator of the repository interface (as medplum's fhir-router hands its
handlers a repository bound to the caller, and HAPI partitions storage per tenant): the router
and the transaction processor only ever hold a guarded repository, so no handler can forget a
check. What it adds to the store:

- **Partitions** (:mod:`reko_fhir.store.partition`): a care unit's token reads and writes its own
  unit's partition only, inside every query; another unit's resource answers exactly as a
  missing one, for every interaction (read, vread, history, search with totals, conditional
  create/update/delete, transactions). A platform token reads every partition and writes to the
  one its request names. The directory (Organization, PractitionerRole) is read across units.
- **External actors** (Försäkringskassan and the like) read only the Communications addressed to
  them, and only while a consent of the patient covers that disclosure today.
- **Writes**: a PractitionerRole stays at its care unit; a coordination case started for a
  patient accepts the unit's open worklist Tasks for them, in the same transaction (contract
  2); each change gets its Provenance
  (https://hl7.org/fhir/R4/provenance.html), and the access-log record of the write is
  committed **in the write's own transaction** (a write that cannot be logged is not stored).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, TypeVar

from reko_fhir.domain.errors import DomainError
from reko_fhir.domain.identifiers import HsaId
from reko_fhir.mapping import codings as c
from reko_fhir.mapping import worklist as wl
from reko_fhir.outcomes import IssueCode, OperationOutcomeError, error
from reko_fhir.security.audit import MOST_ENTITIES, AccessRecord, audit_entry
from reko_fhir.security.tokens import Principal
from reko_fhir.store import (
    MATCH_LIMIT,
    FhirRepository,
    FhirSession,
    Partitions,
    Search,
    Stored,
    not_found,
)
from reko_fhir.store.repository import Bucket, Change, KvaCount, SingleInteractions
from reko_fhir.validation.case_rules import covers
from reko_fhir.validation.store_rules import patient_context

Json = dict[str, Any]
T = TypeVar("T")
EXTERNAL_READS = frozenset({"read", "search-type"})
PARTICIPANT = "http://terminology.hl7.org/CodeSystem/provenance-participant-type"
DATA_OPERATION = "http://terminology.hl7.org/CodeSystem/v3-DataOperation"


def forbidden(message: str) -> OperationOutcomeError:
    return OperationOutcomeError([error(IssueCode.FORBIDDEN, message, None)], status=403)


def writes_for(principal: Principal, named_unit: str | None = None) -> Partitions:
    """What ``principal`` reads and where it writes: a care unit its own partition; a platform
    token every partition, writing to ``named_unit`` (the HSA-id its request names); an
    external actor reads (filtered further by :class:`GuardedRepository`) and writes nothing."""
    if principal.care_unit:
        return Partitions.of_unit(principal.care_unit)
    if principal.all_units:
        if named_unit is not None:
            try:
                HsaId(named_unit)
            except DomainError:
                message = f"X-Reko-Care-Unit '{named_unit[:40]}' is not an HSA-id"
                raise OperationOutcomeError(
                    [error(IssueCode.VALUE, message, None)], status=400
                ) from None
        return Partitions(named_unit, None)
    return Partitions(None, None)


class ScopeCheck:
    """May this token do this interaction on this type (SMART scopes, external actors)?
    The one check the router makes itself (:class:`reko_fhir.rest.router.Permissions`)."""

    def __init__(self, principal: Principal) -> None:
        self.principal = principal

    def allow(self, resource_type: str, interaction: str) -> None:
        who = self.principal
        if who.external_actor and (
            resource_type != "Communication" or interaction not in EXTERNAL_READS
        ):
            raise forbidden("an external actor may only read Communications addressed to it")
        if not who.scopes.allows_interaction(resource_type, interaction):
            raise forbidden(f"the token's scopes do not allow {interaction} on {resource_type}")

    def audit_unit(self) -> str | None:
        """Whose access log the caller reads: a unit's (its HSA-id), or None for all."""
        return None if self.principal.all_units else self.principal.on_behalf_of


@dataclass(frozen=True, slots=True)
class Caller:
    """Who writes, for the Provenance and the access log of each write."""

    principal: Principal
    record: AccessRecord | None = None
    """The request's access-log record (patients and entities are filled per write)."""
    partitions: Partitions | None = None


class GuardedRepository(SingleInteractions):
    """A :class:`~reko_fhir.store.FhirRepository` for one caller (see the module's text).

    ``inner`` is the store already scoped to the caller's partitions; ``audited`` tells the API
    that the request's writes were logged in their own transactions."""

    def __init__(self, inner: FhirRepository, caller: Caller) -> None:
        self.inner = inner
        self.caller = caller
        self.audited = False
        self._external = caller.principal.external_actor

    # -- reads -------------------------------------------------------------------------------
    async def read(self, resource_type: str, resource_id: str) -> Stored:
        stored = await self.inner.read(resource_type, resource_id)
        if self._external and not await self._released(stored):
            raise not_found(resource_type, resource_id)
        return stored

    async def vread(self, resource_type: str, resource_id: str, version: int) -> Stored:
        self._no_external()
        return await self.inner.vread(resource_type, resource_id, version)

    async def history(self, resource_type: str, resource_id: str | None = None) -> list[Stored]:
        self._no_external()
        return await self.inner.history(resource_type, resource_id)

    async def search(self, resource_type: str, search: Search) -> list[Stored]:
        if not self._external:
            return await self.inner.search(resource_type, search)
        found, _ = await self.page(resource_type, search, total="none")
        return found

    async def page(
        self, resource_type: str, search: Search, *, total: str = "estimate"
    ) -> tuple[list[Stored], int | None]:
        if not self._external:
            return await self.inner.page(resource_type, search, total=total)
        # Every match is checked against the consents, then the page is cut from what may go.
        addressed = await self._addressed(resource_type, search)
        everything = replace(addressed, count=MATCH_LIMIT, offset=0)
        released = [
            s for s in await self.inner.search(resource_type, everything) if await self._released(s)
        ]
        page = released[search.offset : search.offset + search.count]
        return page, None if total == "none" else len(released)

    async def total(self, resource_type: str, search: Search) -> int:
        if not self._external:
            return await self.inner.total(resource_type, search)
        _, counted = await self.page(resource_type, search, total="accurate")
        return counted or 0

    async def about_patient(self, patient: str, types: tuple[str, ...]) -> list[Stored]:
        self._no_external()
        return await self.inner.about_patient(patient, types)

    async def read_current(self, resource_type: str, ids: list[str]) -> list[Stored]:
        self._no_external()
        return await self.inner.read_current(resource_type, ids)

    async def kva_counts(
        self, buckets: Sequence[Bucket], units: frozenset[str] | None = None
    ) -> list[KvaCount]:
        """Statistics of the caller's own unit (a platform token: of any, or all)."""
        self._no_external()
        visible = self.caller.partitions.visible if self.caller.partitions else None
        if units is not None and visible is not None and not units <= visible:
            raise forbidden("a care unit's token reads the statistics of its own unit only")
        return await self.inner.kva_counts(buckets, units)

    # -- writes (create, update, conditional update, delete: SingleInteractions' units) -----
    async def in_unit(self, work: Callable[[FhirSession], Awaitable[T]]) -> T:
        """``work`` on a guarded session; its writes' access-log record commits with them."""
        principal = self.caller.principal
        if principal.external_actor:
            raise forbidden("an external actor may not write")
        if principal.all_units and self.caller.partitions and self.caller.partitions.own is None:
            message = (
                "a platform token names the care unit it writes for: "
                "X-Reko-Care-Unit: <the unit's HSA-id>"
            )
            raise OperationOutcomeError([error(IssueCode.REQUIRED, message, None)], status=400)

        logged = False

        async def guarded(unit: FhirSession) -> T:
            nonlocal logged
            session = GuardedSession(unit, principal)
            result = await work(session)
            if unit.changes and self.caller.record is not None:
                record = _write_record(self.caller.record, unit.changes, session.touched)
                unit.audit.append(audit_entry(record))
                logged = True
            return result

        result = await self.inner.in_unit(guarded)
        self.audited = self.audited or logged
        return result

    async def in_snapshot(self, work: Callable[[FhirSession], Awaitable[T]]) -> T:
        """``work`` on a guarded session that commits nothing (no access-log record: the
        unit that follows writes, and logs, what it does)."""
        self._no_external()
        principal = self.caller.principal
        return await self.inner.in_snapshot(lambda unit: work(GuardedSession(unit, principal)))

    # -- external actors ---------------------------------------------------------------------
    def _no_external(self) -> None:
        if self._external:  # the scope check refuses these first; a second line of defence
            raise forbidden("an external actor may only read Communications addressed to it")

    async def _mine(self) -> list[str]:
        """The Organizations (in any unit's directory) that are this external actor."""
        found = await self.inner.search(
            "Organization", Search((("identifier", self._external or ""),), MATCH_LIMIT)
        )
        return [f"Organization/{o.id}" for o in found]

    async def _addressed(self, resource_type: str, search: Search) -> Search:
        mine = await self._mine()
        if resource_type != "Communication" or not mine:
            return replace(search, params=(*search.params, ("_id", "-")))  # matches nothing
        return replace(search, params=(*search.params, ("recipient", ",".join(mine))))

    async def _released(self, stored: Stored) -> bool:
        """An external actor's Communication: addressed to it, and a consent covers it today."""
        resource = stored.resource
        if resource.get("resourceType") != "Communication":
            return False
        mine = set(await self._mine())
        recipients = {
            r.get("reference") for r in resource.get("recipient") or [] if isinstance(r, dict)
        }
        patient = (resource.get("subject") or {}).get("reference")
        if not recipients & mine or not isinstance(patient, str):
            return False
        today = datetime.now(UTC).date()
        # Only the consents of the unit that holds the notice: another unit could write a
        # Consent naming this Patient's id, and must not release this unit's notice with it.
        holder = _InPartition(self.inner, stored.partition)
        resolver = await patient_context(holder, patient, set(mine))
        return any(
            covers(consent, today, org, resolver)
            for consent in resolver.consents_for(patient)
            for org in mine
        )


class _InPartition:
    """The rules' reads of a patient's consents and episodes, kept to one partition (the
    directory stays shared)."""

    def __init__(self, inner: FhirRepository, partition: str) -> None:
        self.inner = inner
        self.partition = partition

    async def search(self, resource_type: str, search: Search) -> list[Stored]:
        found = await self.inner.search(resource_type, search)
        return [s for s in found if s.partition == self.partition]

    async def read(self, resource_type: str, resource_id: str) -> Stored:
        return await self.inner.read(resource_type, resource_id)

    async def about_patient(self, patient: str, types: tuple[str, ...]) -> list[Stored]:
        found = await self.inner.about_patient(patient, types)
        return [s for s in found if s.partition == self.partition]

    async def read_current(self, resource_type: str, ids: list[str]) -> list[Stored]:
        return await self.inner.read_current(resource_type, ids)


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

    async def read(self, resource_type: str, resource_id: str) -> Stored:
        return await self.inner.read(resource_type, resource_id)

    async def search(self, resource_type: str, search: Search) -> list[Stored]:
        return await self.inner.search(resource_type, search)

    async def one_match(self, resource_type: str, condition: Search) -> Stored | None:
        found = await self.inner.one_match(resource_type, condition)
        if found is not None:
            self.touched.append(found)
        return found

    async def about_patient(self, patient: str, types: tuple[str, ...]) -> list[Stored]:
        return await self.inner.about_patient(patient, types)

    async def read_current(self, resource_type: str, ids: list[str]) -> list[Stored]:
        return await self.inner.read_current(resource_type, ids)

    async def create(
        self, resource: Json, *, condition: Search | None = None, resource_id: str | None = None
    ) -> Stored:
        self._check(resource)
        await self._directory_of_own_unit(resource)
        await self._patient_of_own_unit(resource)
        stored = await self.inner.create(resource, condition=condition, resource_id=resource_id)
        self.touched.append(stored)
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
        stored = await self.inner.update_match(resource, condition, existing)
        self.touched.append(stored)
        if stored.created or not stored.unchanged:
            await self._provenance(stored, "CREATE" if stored.created else "UPDATE")
            await self._accept_candidates(stored)
        return stored

    async def delete(self, resource_type: str, resource_id: str) -> int | None:
        self._check({"resourceType": resource_type})
        return await self.inner.delete(resource_type, resource_id)

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
        found = await self.inner.read_current(kind, [resource_id])
        if found and found[0].partition != self.inner.partitions.own:
            raise not_found(kind, resource_id)
        return found[0] if found else None

    async def _patient_of_own_unit(self, resource: Json) -> None:
        """A unit's record is about a Patient of its own partition: naming another unit's
        Patient id (or one that does not exist) would attach to that patient's record."""
        for element in ("patient", "subject", "for"):
            reference = (resource.get(element) or {}).get("reference")
            if not isinstance(reference, str) or not reference.startswith("Patient/"):
                continue
            found = await self.inner.read_current("Patient", [reference.split("/", 1)[1]])
            if not found or found[0].partition != self.inner.partitions.own:
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
                found = await self.inner.read_current("Organization", [reference.split("/")[1]])
                if found and found[0].partition != own:
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


def _write_record(
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
