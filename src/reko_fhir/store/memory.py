"""A repository in memory: the FHIR interactions of :class:`reko_fhir.store.sql.SqlRepository`
without a database, so the router and transaction semantics are tested in milliseconds.

Same contract (https://hl7.org/fhir/R4/http.html), same partitions, same search parameters
(indexed by the same :mod:`reko_fhir.store.index` functions, dates compared by the same prefix
rules). Writers run one at a time; a unit's writes are held apart until it ends without an
exception, so readers never see half a transaction. Nothing is persisted and there is no outbox.
"""

from __future__ import annotations

import asyncio
import copy
import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

from reko_fhir.outcomes import IssueCode, OperationOutcomeError, error
from reko_fhir.store import index
from reko_fhir.store.conditions import (
    date_condition,
    number_condition,
    number_value,
    span_condition,
)
from reko_fhir.store.partition import EVERY, Partitions
from reko_fhir.store.repository import (
    COUNT_LIMIT,
    MATCH_LIMIT,
    Bucket,
    Change,
    FhirSession,
    Json,
    KvaCount,
    Search,
    SingleInteractions,
    Stored,
    check_version,
    gone,
    not_found,
    require_searchable,
    update_match,
    update_target,
    writes_to,
)
from reko_fhir.store.statistics import count_resources, narrowed
from reko_fhir.store.unit import comparable, version_rows

if TYPE_CHECKING:
    from reko_fhir.store.audit import AuditEntry

T = TypeVar("T")
Key = tuple[str, str]


@dataclass(frozen=True, slots=True)
class _Version:
    type: str
    id: str
    version: int
    last_updated: datetime
    deleted: bool
    content: Json | None
    partition: str

    def stored(self) -> Stored:
        assert self.content is not None
        return Stored(
            copy.deepcopy(self.content), self.version, self.last_updated, False, self.partition
        )


class _Data:
    """Committed state: every version, and the current one per resource."""

    def __init__(self) -> None:
        self.versions: list[_Version] = []
        self.current: dict[Key, _Version] = {}
        self.audit: list[AuditEntry] = []
        self.changes: list[Change] = []


class MemorySession:
    """One unit of work over :class:`_Data`: reads see its own writes; :meth:`commit` applies."""

    def __init__(self, data: _Data, partitions: Partitions) -> None:
        self._data = data
        self.partitions = partitions
        self.changes: list[Change] = []
        self.audit: list[AuditEntry] = []
        self._current: dict[Key, _Version] = {}
        self._versions: list[_Version] = []

    def commit(self) -> None:
        self._data.versions += self._versions
        self._data.current.update(self._current)
        self._data.audit += self.audit
        self._data.changes += self.changes

    # -- reading -----------------------------------------------------------------------------
    def _get(self, key: Key) -> _Version | None:
        return self._current.get(key) or self._data.current.get(key)

    def _all_current(self) -> Iterable[_Version]:
        merged = {**self._data.current, **self._current}
        return merged.values()

    def _visible(self, row: _Version, partitions: frozenset[str] | None) -> bool:
        return partitions is None or row.partition in partitions

    async def read(self, resource_type: str, resource_id: str) -> Stored:
        row = self._get((resource_type, resource_id))
        if row is None or not self._visible(row, self.partitions.reads(resource_type)):
            raise not_found(resource_type, resource_id)
        if row.deleted:
            raise gone(resource_type, resource_id)
        return row.stored()

    def matching(self, resource_type: str, search: Search, *, own: bool = False) -> list[_Version]:
        """Current, not deleted matches of every parameter, in the partitions read (or own)."""
        partitions = frozenset({self._own()}) if own else self.partitions.reads(resource_type)
        # A chain looks for its Patients where the search looks, as the SQL store's does.
        patients = frozenset({self._own()}) if own else self.partitions.reads("Patient")
        found = [
            row
            for row in self._all_current()
            if row.type == resource_type and not row.deleted and self._visible(row, partitions)
        ]
        for name, value in search.params:
            require_searchable(resource_type, name)
            if name in index.NUMBER_NAMES:
                number_value(value)  # refused as the SQL store refuses it, matches or not
            found = [row for row in found if self._matches(row, name, value, patients)]
        return found

    def _matches(
        self, row: _Version, name: str, value: str, patients: frozenset[str] | None
    ) -> bool:
        content = row.content or {}
        if name == "_id":
            return row.id in value.split(",")
        if name == "_lastUpdated":
            return bool(date_condition(row.last_updated, value))
        if name in index.DATE_NAMES:
            return any(
                bool(span_condition(low, high, value))
                for param, low, high in index.dates(content)
                if param == name
            )
        if name in index.NUMBER_NAMES:
            return any(
                bool(number_condition(number, value))
                for param, number in index.numbers(content)
                if param == name
            )
        if name in ("subject.identifier", "patient.identifier"):
            chained = {
                f"Patient/{p.id}"
                for p in self._all_current()
                if p.type == "Patient"
                and not p.deleted
                and self._visible(p, patients)
                and _token(p.content or {}, "identifier", value)
            }
            param = name.split(".", maxsplit=1)[0]
            return any(t in chained for p, t in index.references(content) if p == param)
        if name in ("subject", "patient", "recipient", "owner"):
            default = "Organization/" if name in ("recipient", "owner") else "Patient/"
            targets = {v if "/" in v else f"{default}{v}" for v in value.split(",")}
            return any(t in targets for p, t in index.references(content) if p == name)
        return _token(content, name, value)

    def _page(self, resource_type: str, search: Search) -> list[_Version]:
        rows = sorted(self.matching(resource_type, search), key=lambda r: r.id)
        # Stable sorts from the last key to the first: the first key decides, the id breaks ties.
        for key in reversed(search.sort or ("-_lastUpdated",)):
            name, descending = key.lstrip("-"), key.startswith("-")
            if name in ("_id", "_lastUpdated"):
                field = (lambda r: r.id) if name == "_id" else (lambda r: r.last_updated)
                rows.sort(key=field, reverse=descending)
            else:  # as the SQL store: earliest (or latest) value; none sorts last either way
                valued = [(r, _sort_value(r, name, descending)) for r in rows]
                present = sorted(
                    (pair for pair in valued if pair[1] is not None),
                    key=lambda pair: pair[1],
                    reverse=descending,
                )
                rows = [r for r, _ in present] + [r for r, v in valued if v is None]
        return rows[search.offset : search.offset + search.count]

    async def search(self, resource_type: str, search: Search) -> list[Stored]:
        return [row.stored() for row in self._page(resource_type, search)]

    async def page(
        self, resource_type: str, search: Search, *, total: str = "estimate"
    ) -> tuple[list[Stored], int | None]:
        found = await self.search(resource_type, search)
        if total == "none":
            return found, None
        count = len(self.matching(resource_type, search))
        return found, count if total == "accurate" or count <= COUNT_LIMIT else None

    async def total(self, resource_type: str, search: Search) -> int:
        return len(self.matching(resource_type, search))

    async def one_match(self, resource_type: str, condition: Search) -> Stored | None:
        ids = [row.id for row in self.matching(resource_type, condition, own=True)][:MATCH_LIMIT]
        if len(ids) > 1:
            message = f"{len(ids)} {resource_type} resources match {condition.canonical()}"
            raise OperationOutcomeError([error(IssueCode.MULTIPLE_MATCHES, message, resource_type)])
        return self._current_row(resource_type, ids[0]).stored() if ids else None

    async def one_match_each(
        self, conditions: Sequence[tuple[str, Search]], known: Sequence[Stored | None] = ()
    ) -> list[Stored | None]:
        return [await self.one_match(t, condition) for t, condition in conditions]

    def still_unmatched(self, resource_type: str, condition: Search) -> None:
        """Nothing to skip: a create here always looks (in memory, a look costs nothing)."""

    def unchanged(self, resource: Json, current: Stored) -> Stored | None:
        """None: the update decides (in memory, reading the row costs nothing)."""
        return None

    def _current_row(self, resource_type: str, resource_id: str) -> _Version:
        row = self._get((resource_type, resource_id))
        assert row is not None
        return row

    async def about_patient(self, patient: str, types: tuple[str, ...]) -> list[Stored]:
        rows = [
            row
            for row in self._all_current()
            if row.type in types
            and not row.deleted
            and self._visible(row, self.partitions.visible)
            and ("patient", patient) in set(index.references(row.content or {}))
        ]
        rows.sort(key=lambda r: (-r.last_updated.timestamp(), r.id))
        return [row.stored() for row in rows[:MATCH_LIMIT]]

    async def read_current(self, resource_type: str, ids: list[str]) -> list[Stored]:
        wanted = self.partitions.reads(resource_type)
        rows = [self._get((resource_type, i)) for i in ids]
        return [
            row.stored()
            for row in rows
            if row is not None and not row.deleted and self._visible(row, wanted)
        ]

    # -- writing -----------------------------------------------------------------------------
    def _own(self) -> str:
        return writes_to(self.partitions)

    def _own_row(self, resource_type: str, resource_id: str) -> _Version | None:
        row = self._get((resource_type, resource_id))
        return row if row is not None and row.partition == self._own() else None

    async def create(
        self, resource: Json, *, condition: Search | None = None, resource_id: str | None = None
    ) -> Stored:
        resource_type = str(resource["resourceType"])
        self._own()  # 403 before anything else for a caller that writes nowhere
        if condition is not None:
            existing = await self.one_match(resource_type, condition)
            if existing is not None:
                return existing
        new_id = resource_id or str(uuid.uuid4())
        if self._get((resource_type, new_id)) is not None:  # the SQL store's primary key
            message = f"{resource_type}/{new_id} exists already"
            raise OperationOutcomeError([error(IssueCode.DUPLICATE, message, None)], status=409)
        stored = self._write(resource_type, new_id, resource, 1)
        return replace(stored, created=True)

    async def update(self, resource: Json, *, if_match: int | None = None) -> Stored:
        resource_type, resource_id = update_target(resource)
        current = self._own_row(resource_type, resource_id)
        if current is None:
            raise not_found(resource_type, resource_id)
        check_version(resource_type, if_match, current.version, current.deleted)
        if not current.deleted and _same(current.content, resource):
            return replace(current.stored(), unchanged=True)
        return self._write(resource_type, resource_id, resource, current.version + 1)

    async def update_match(
        self, resource: Json, condition: Search, existing: Stored | None
    ) -> Stored:
        return await update_match(self, resource, condition, existing)

    async def delete(self, resource_type: str, resource_id: str) -> int | None:
        current = self._own_row(resource_type, resource_id)
        if current is None or current.deleted:
            return None
        version = current.version + 1
        tombstone = _Version(
            resource_type, resource_id, version, datetime.now(UTC), True, None, current.partition
        )
        self._versions.append(tombstone)
        self._current[(resource_type, resource_id)] = tombstone
        self.changes.append(
            Change(resource_type, resource_id, version, None, current.partition, current.content)
        )
        return version

    def _write(self, resource_type: str, resource_id: str, resource: Json, version: int) -> Stored:
        now = datetime.now(UTC)
        partition = self._own()  # updates and deletes reach only the own partition's rows
        rows = version_rows(resource_type, resource_id, resource, version, now, partition=partition)
        content = copy.deepcopy(rows.content)
        written = _Version(resource_type, resource_id, version, now, False, content, partition)
        self._versions.append(written)
        self._current[(resource_type, resource_id)] = written
        self.changes.append(
            Change(resource_type, resource_id, version, copy.deepcopy(content), partition)
        )
        return written.stored()


def _sort_value(row: _Version, name: str, descending: bool) -> Any:
    """The value a date or token parameter sorts ``row`` by (https://hl7.org/fhir/R4/search.html#sort)."""
    content = row.content or {}
    values: list[Any]
    if name in index.DATE_NAMES:
        values = [high if descending else low for p, low, high in index.dates(content) if p == name]
    elif name in index.NUMBER_NAMES:
        values = [v for p, v in index.numbers(content) if p == name]
    else:
        values = [v for p, _, v in index.tokens(content) if p == name]
    if not values:
        return None
    return max(values) if descending else min(values)


def _token(content: Json, name: str, value: str) -> bool:
    """``system|code``, ``code`` or ``system|`` (https://hl7.org/fhir/R4/search.html#token)."""
    system, bar, code = value.rpartition("|")
    return any(
        param == name and (not code or v == code) and (not bar or s == system)
        for param, s, v in index.tokens(content)
    )


def _same(stored: Json | None, resource: Json) -> bool:
    """The SQL store's notion of an unchanged resend, on parsed content."""
    return stored is not None and comparable(stored) == comparable(resource)


class MemoryRepository(SingleInteractions):
    """:class:`reko_fhir.store.repository.FhirRepository` in memory (tests, tools)."""

    def __init__(self, partitions: Partitions = EVERY, data: _Data | None = None) -> None:
        self.partitions = partitions
        self.data = data or _Data()
        self._writer = asyncio.Lock()

    def scoped(self, partitions: Partitions) -> MemoryRepository:
        """The same data seen through ``partitions``."""
        view = MemoryRepository(partitions, self.data)
        view._writer = self._writer
        return view

    def _reader(self) -> MemorySession:
        return MemorySession(self.data, self.partitions)

    async def in_unit(self, work: Callable[[FhirSession], Awaitable[T]]) -> T:
        async with self._writer:
            session = MemorySession(self.data, self.partitions)
            result = await work(session)
            session.commit()  # only reached without an exception: all of it, or none
            return result

    async def in_snapshot(self, work: Callable[[FhirSession], Awaitable[T]]) -> T:
        return await work(MemorySession(self.data, self.partitions))  # never committed

    async def read(self, resource_type: str, resource_id: str) -> Stored:
        return await self._reader().read(resource_type, resource_id)

    async def vread(self, resource_type: str, resource_id: str, version: int) -> Stored:
        wanted = self.partitions.reads(resource_type)
        for row in self.data.versions:
            if (row.type, row.id, row.version) == (resource_type, resource_id, version) and (
                wanted is None or row.partition in wanted
            ):
                if row.deleted:
                    raise gone(resource_type, f"{resource_id}/_history/{version}")
                return row.stored()
        raise not_found(resource_type, f"{resource_id}/_history/{version}")

    async def history(self, resource_type: str, resource_id: str | None = None) -> list[Stored]:
        wanted = self.partitions.reads(resource_type)
        rows = [
            row
            for row in self.data.versions
            if not row.deleted
            and row.type == resource_type
            and (resource_id is None or row.id == resource_id)
            and (wanted is None or row.partition in wanted)
        ]
        rows.sort(key=lambda r: (r.last_updated, r.version), reverse=True)
        return [row.stored() for row in rows]

    async def search(self, resource_type: str, search: Search) -> list[Stored]:
        return await self._reader().search(resource_type, search)

    async def page(
        self, resource_type: str, search: Search, *, total: str = "estimate"
    ) -> tuple[list[Stored], int | None]:
        return await self._reader().page(resource_type, search, total=total)

    async def total(self, resource_type: str, search: Search) -> int:
        return await self._reader().total(resource_type, search)

    async def about_patient(self, patient: str, types: tuple[str, ...]) -> list[Stored]:
        return await self._reader().about_patient(patient, types)

    async def read_current(self, resource_type: str, ids: list[str]) -> list[Stored]:
        return await self._reader().read_current(resource_type, ids)

    async def kva_counts(
        self, buckets: Sequence[Bucket], units: frozenset[str] | None = None
    ) -> list[KvaCount]:
        wanted = narrowed(self.partitions.visible, units)
        current = [
            (row.partition, row.content)
            for row in self.data.current.values()
            if not row.deleted
            and row.content is not None
            and (wanted is None or row.partition in wanted)
        ]
        return count_resources(current, buckets)
