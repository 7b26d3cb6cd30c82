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
- **Writes** (:mod:`reko_fhir.security.session`): a PractitionerRole stays at its care unit; a
  coordination case started for a patient accepts the unit's open worklist Tasks for them, in
  the same transaction (contract 2); each change gets its Provenance
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
from reko_fhir.outcomes import IssueCode, OperationOutcomeError, error
from reko_fhir.security.audit import AccessRecord, audit_entry
from reko_fhir.security.session import GuardedSession, forbidden, write_record
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
from reko_fhir.store.repository import Bucket, KvaCount, SingleInteractions
from reko_fhir.validation.case_rules import covers
from reko_fhir.validation.store_rules import patient_context

Json = dict[str, Any]
T = TypeVar("T")
EXTERNAL_READS = frozenset({"read", "search-type"})


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
                record = write_record(self.caller.record, unit.changes, session.touched)
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
