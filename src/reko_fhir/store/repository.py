"""The store's interface, named after the FHIR interactions (https://hl7.org/fhir/R4/http.html).

Implementations: :class:`reko_fhir.store.sql.SqlRepository` (SQLite embedded, PostgreSQL at
scale) and :class:`reko_fhir.store.memory.MemoryRepository` (tests). Failures are
:class:`~reko_fhir.outcomes.OperationOutcomeError` with the status the interaction defines
(404 unknown, 410 deleted, 412 stale version or several matches).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from reko_fhir.outcomes import IssueCode, OperationOutcomeError, error
from reko_fhir.store.partition import Partitions

if TYPE_CHECKING:
    from collections.abc import Sequence

    from reko_fhir.store.audit import AuditEntry

Json = dict[str, Any]
T = TypeVar("T")

SEARCHABLE = (
    "_id",
    "_lastUpdated",
    "identifier",
    "status",
    "code",
    "category",
    "subject",
    "patient",
    "subject.identifier",
    "patient.identifier",
    "date",
    "sent",
    "recipient",
    "owner",
    "sick-leave-start",
    "sick-leave-length",
    "activity-code",
    "activity-date",
)
"""The search parameters every implementation serves (https://hl7.org/fhir/R4/search.html)."""
MATCH_LIMIT = 1000
"""Matches a condition or a patient's compartment reads at most."""
COUNT_LIMIT = 1000
"""Matches a search counts for its ``total`` unless asked for an accurate one (``_total``)."""


def not_found(resource_type: str, resource_id: str) -> OperationOutcomeError:
    """404: unknown, or (the same answer) held in a partition the caller does not see."""
    message = f"{resource_type}/{resource_id} is not known"
    return OperationOutcomeError([error(IssueCode.NOT_FOUND, message, resource_type)])


def require_searchable(resource_type: str, name: str) -> None:
    """400 for a parameter no implementation serves (the router refuses unknown ones first)."""
    if name not in SEARCHABLE:
        message = f"the search parameter '{name}' is not supported for {resource_type}"
        raise OperationOutcomeError([error(IssueCode.NOT_SUPPORTED, message, name)])


def writes_to(partitions: Partitions) -> str:
    """The partition ``partitions`` writes to; 403 for a caller that writes to none (the guard
    refuses such writers before they reach a store)."""
    if partitions.own is None:
        raise OperationOutcomeError(
            [error(IssueCode.FORBIDDEN, "this caller writes to no care unit", None)], status=403
        )
    return partitions.own


def gone(resource_type: str, resource_id: str) -> OperationOutcomeError:
    """410: deleted (https://hl7.org/fhir/R4/http.html#read)."""
    message = f"{resource_type}/{resource_id} has been deleted"
    return OperationOutcomeError([error(IssueCode.DELETED, message, resource_type)])


@dataclass(frozen=True, slots=True)
class Stored:
    """A resource as stored: ``meta.versionId`` and ``meta.lastUpdated`` set."""

    resource: Json
    version: int
    last_updated: datetime
    created: bool = False
    partition: str = ""
    """The care unit whose partition holds it (:mod:`reko_fhir.store.partition`)."""
    unchanged: bool = False
    """An update whose content equalled the current version's: nothing was written."""

    @property
    def id(self) -> str:
        return str(self.resource["id"])


@dataclass(frozen=True, slots=True)
class Change:
    """One version written in a unit of work; ``resource`` is None for a deletion."""

    resource_type: str
    resource_id: str
    version: int
    resource: Json | None
    partition: str = ""
    before: Json | None = None
    """For a deletion, the content it removed (the outbox deletes by its identifiers)."""


@dataclass(frozen=True, slots=True)
class Search:
    """Search parameters as (name, value) pairs, e.g. ``("identifier", "sys|123")``."""

    params: tuple[tuple[str, str], ...] = ()
    count: int = 50
    offset: int = 0
    sort: tuple[str, ...] = ()  # "_lastUpdated", "-date", "status": a key, "-" for descending

    @classmethod
    def parse(cls, query: str, count: int = 50) -> Search:
        """``identifier=sys|1&patient=Patient/2`` (as in ``If-None-Exist``)."""
        from urllib.parse import parse_qsl  # noqa: PLC0415 - only parsing needs it

        return cls(tuple(sorted(parse_qsl(query, keep_blank_values=True))), count)

    def canonical(self) -> str:
        """One spelling per meaning, so equal conditions collide on the unique constraint."""
        return "&".join(f"{k}={v}" for k, v in sorted(self.params))


KVA_GROUPS = (
    "gc001",
    "dv077",
    "aw026",
    "patienter",
    "nya-insatser",
    "inom-90-dagar",
    "meddelanden-fk",
)
"""The codes of ``reko-measure-group`` (profile contract 2), in the Measure's order."""


@dataclass(frozen=True, slots=True)
class Bucket:
    """One period the KVÅ statistics count: [start, end) in UTC, named ``label`` (``2026-01``)."""

    label: str
    start: datetime
    end: datetime


def months(first: str, last: str) -> list[Bucket]:
    """One bucket per calendar month (UTC) from ``first`` to ``last`` (``YYYY-MM``), inclusive;
    ValueError for a month that is none."""
    year, month = (int(part) for part in first.split("-"))
    end_year, end_month = (int(part) for part in last.split("-"))
    found = []
    while (year, month) <= (end_year, end_month):
        start = datetime(year, month, 1, tzinfo=UTC)
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
        found.append(Bucket(f"{start:%Y-%m}", start, datetime(year, month, 1, tzinfo=UTC)))
    return found


@dataclass(frozen=True, slots=True)
class KvaCount:
    """How many of ``group`` a care unit (its partition) had in one bucket; ``stratum`` is a
    ``reko-coordination-part`` code (``gc001`` only), None for the whole group."""

    unit: str
    bucket: str
    group: str
    count: int
    stratum: str | None = None


class FhirSession(Protocol):
    """The interactions inside one unit of work (one database transaction): what a transaction
    Bundle's entries run on (https://hl7.org/fhir/R4/http.html#transaction). Reads see the
    session's own writes; nothing commits until the unit ends without an exception."""

    changes: list[Change]
    """Every version written in the unit, in order."""
    audit: list[AuditEntry]
    """Access-log records to commit with the unit's writes."""
    partitions: Partitions
    """What the session reads and where it writes."""

    async def read(self, resource_type: str, resource_id: str) -> Stored: ...

    async def search(self, resource_type: str, search: Search) -> list[Stored]: ...

    async def one_match(self, resource_type: str, condition: Search) -> Stored | None:
        """The one resource a condition names in the partition written to (412 for several)."""

    async def about_patient(self, patient: str, types: tuple[str, ...]) -> list[Stored]: ...

    async def read_current(self, resource_type: str, ids: list[str]) -> list[Stored]: ...

    async def one_match_each(
        self, conditions: Sequence[tuple[str, Search]], known: Sequence[Stored | None] = ()
    ) -> list[Stored | None]:
        """:meth:`one_match` of each condition in order, in as few queries as may be;
        ``known``: matches read before (on a snapshot), kept where still current."""

    def still_unmatched(self, resource_type: str, condition: Search) -> None:
        """``condition`` matched nothing on this session: unless a write since matches it, the
        next create under it need not look again."""

    def unchanged(self, resource: Json, current: Stored) -> Stored | None:
        """The no-op answer of an update of ``current`` (read on this session, not written
        since) to ``resource`` when they say the same, without reading again; else None."""

    async def create(
        self, resource: Json, *, condition: Search | None = None, resource_id: str | None = None
    ) -> Stored: ...

    async def update(self, resource: Json, *, if_match: int | None = None) -> Stored: ...

    async def update_match(
        self, resource: Json, condition: Search, existing: Stored | None
    ) -> Stored: ...

    async def delete(self, resource_type: str, resource_id: str) -> int | None: ...


class FhirRepository(Protocol):
    """The store as the FHIR interactions see it (https://hl7.org/fhir/R4/http.html): read,
    vread, search, history, and the writes, each in a unit of work (:meth:`transaction`).

    ``create``, ``update``, ``conditional_update`` and ``delete`` are one-interaction units.
    The router and the transaction processor are typed against this; a request's instance is a
    guarded one (:class:`reko_fhir.security.guard.GuardedRepository`), so no handler holds
    an unchecked store."""

    async def read(self, resource_type: str, resource_id: str) -> Stored: ...

    async def vread(self, resource_type: str, resource_id: str, version: int) -> Stored: ...

    async def search(self, resource_type: str, search: Search) -> list[Stored]: ...

    async def page(
        self, resource_type: str, search: Search, *, total: str = "estimate"
    ) -> tuple[list[Stored], int | None]: ...

    async def total(self, resource_type: str, search: Search) -> int: ...

    async def history(self, resource_type: str, resource_id: str | None = None) -> list[Stored]:
        """Every version of a type (or of one resource), newest first. The system history is
        the router's, type by type, as far as the caller's scopes reach."""

    async def about_patient(self, patient: str, types: tuple[str, ...]) -> list[Stored]: ...

    async def read_current(self, resource_type: str, ids: list[str]) -> list[Stored]: ...

    async def create(self, resource: Json, *, if_none_exist: Search | None = None) -> Stored: ...

    async def update(self, resource: Json, *, if_match: int | None = None) -> Stored: ...

    async def conditional_update(self, resource: Json, condition: Search) -> Stored: ...

    async def delete(self, resource_type: str, resource_id: str) -> int | None: ...

    async def in_unit(self, work: Callable[[FhirSession], Awaitable[T]]) -> T:
        """Run ``work`` in one unit of work (a transaction Bundle, or a write with the reads it
        depends on); all of it commits, or none."""

    async def in_snapshot(self, work: Callable[[FhirSession], Awaitable[T]]) -> T:
        """Run ``work`` on a session that reads as a unit does and commits nothing, without
        the write lock: what a transaction prepares (resolves, validates) before its unit,
        which then checks again what the store may have changed meanwhile."""

    async def kva_counts(
        self, buckets: Sequence[Bucket], units: frozenset[str] | None = None
    ) -> list[KvaCount]:
        """The KVÅ statistics (:mod:`reko_fhir.store.statistics`) per care unit and bucket, in
        the partitions the caller reads (narrowed to ``units`` when given); zero counts are
        left out."""


class SingleInteractions:
    """The one-interaction writes of :class:`FhirRepository`, each a unit of its own through
    ``in_unit``: written once for every implementation (SQL, memory, the guard)."""

    async def in_unit(self, work: Callable[[FhirSession], Awaitable[T]]) -> T:
        raise NotImplementedError

    async def create(self, resource: Json, *, if_none_exist: Search | None = None) -> Stored:
        return await self.in_unit(lambda unit: unit.create(resource, condition=if_none_exist))

    async def update(self, resource: Json, *, if_match: int | None = None) -> Stored:
        return await self.in_unit(lambda unit: unit.update(resource, if_match=if_match))

    async def conditional_update(self, resource: Json, condition: Search) -> Stored:
        """https://hl7.org/fhir/R4/http.html#cond-update: the one match in the own partition
        is updated; none, and the resource is created under the condition."""
        kind = str(resource.get("resourceType"))

        async def work(unit: FhirSession) -> Stored:
            return await unit.update_match(
                resource, condition, await unit.one_match(kind, condition)
            )

        return await self.in_unit(work)

    async def delete(self, resource_type: str, resource_id: str) -> int | None:
        return await self.in_unit(lambda unit: unit.delete(resource_type, resource_id))


async def update_match(
    session: FhirSession, resource: Json, condition: Search, existing: Stored | None
) -> Stored:
    """The rest of a conditional update once ``existing`` (the one match of ``condition`` in the
    session, or None) is known: update it, or create under the condition with a server id."""
    resource_type = str(resource["resourceType"])
    if existing is None:
        without_id = {k: v for k, v in resource.items() if k != "id"}
        return await session.create(without_id, condition=condition)
    if resource.get("id") not in (None, existing.id):
        message = f"the resource's id {resource['id']} is not the matching {existing.id}"
        raise OperationOutcomeError([error(IssueCode.CONFLICT, message, f"{resource_type}.id")])
    return await session.update({**resource, "id": existing.id})


def update_target(resource: Json) -> tuple[str, str]:
    """The type and id an update writes (https://hl7.org/fhir/R4/http.html#update)."""
    resource_type, resource_id = str(resource["resourceType"]), resource.get("id")
    if not isinstance(resource_id, str) or not resource_id:
        message = "an update names the resource's id"
        raise OperationOutcomeError([error(IssueCode.REQUIRED, message, f"{resource_type}.id")])
    return resource_type, resource_id


def check_version(resource_type: str, if_match: int | None, version: int, deleted: bool) -> None:
    """412 when ``If-Match`` names another version than the current one
    (https://hl7.org/fhir/R4/http.html#concurrency)."""
    if if_match is not None and version != if_match:
        have = "deleted" if deleted else str(version)
        message = f"If-Match version {if_match} is stale: the current version is {have}"
        raise OperationOutcomeError([error(IssueCode.CONFLICT, message, resource_type)], status=412)
