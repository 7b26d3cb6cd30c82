"""A unit of work: FHIR interactions inside one database transaction.

A transaction Bundle is several interactions that succeed or fail together
(https://hl7.org/fhir/R4/http.html#trules); the REST layer runs them on one :class:`Unit`, and
the repository's single interactions are one-operation units. Nothing here commits: the
unit's transaction does, when its ``async with`` block ends without an exception.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

if TYPE_CHECKING:
    from reko_fhir.store.audit import AuditEntry

from reko_fhir.outcomes import IssueCode, OperationOutcomeError, error
from reko_fhir.store import index, prebuilt
from reko_fhir.store.conditions import (
    by_patient,
    instant_text,
)
from reko_fhir.store.context import PatientRows, patient_rows
from reko_fhir.store.matching import ConditionsAtOnce
from reko_fhir.store.partition import EVERY, Partitions
from reko_fhir.store.pending import FlushingConnection, PendingInserts
from reko_fhir.store.repository import (
    COUNT_LIMIT,
    MATCH_LIMIT,
    Change,
    Json,
    Search,
    Stored,
    check_version,
    gone,
    not_found,
    update_match,
    update_target,
    writes_to,
)
from reko_fhir.store.schema import (
    conditional_create,
    date_index,
    number_index,
    reference_index,
    resource_current,
    resource_version,
    token_index,
)
from reko_fhir.store.search_sql import SearchQueries

_with = prebuilt.in_partitions


def stored_from_row(row: Any) -> Stored:
    resource: Json = json.loads(row.content)
    # SQLite gives naive UTC back; PostgreSQL an aware time in the session's zone: both → UTC.
    moment = row.last_updated if row.last_updated.tzinfo else row.last_updated.replace(tzinfo=UTC)
    return Stored(resource, row.version, moment.astimezone(UTC), partition=row.partition)


class Unit(ConditionsAtOnce):
    """Interactions on one open transaction (``conn``), inside the caller's ``partitions``:
    reads and searches see what those let them, conditions match in the own partition, and
    writes go there (:mod:`reko_fhir.store.partition`)."""

    def __init__(
        self, conn: AsyncConnection, *, lock_rows: bool, partitions: Partitions = EVERY
    ) -> None:
        # The unit's inserts wait in ``pending`` and go together, before the unit's next
        # statement or its commit (:mod:`reko_fhir.store.pending`).
        self.conn = FlushingConnection(conn, PendingInserts())
        self.lock_rows = lock_rows  # SELECT … FOR UPDATE where the database has it
        self.partitions = partitions
        self._queries = SearchQueries(partitions)
        # Every version written in this unit, in order: the outbox enqueues from it before
        # the commit, so a write and its deliveries land (or vanish) together.
        self.changes: list[Change] = []
        # Access-log records of this unit's writes: committed with them, or not at all.
        self.audit: list[AuditEntry] = []
        # Conditions matched to nothing on this transaction, by type, until the unit writes
        # that type: a conditional create right after (a transaction's entry, resolved before
        # it is written) need not match again. A race with another transaction is the
        # conditional_create key's to catch, as it was.
        self._unmatched: set[tuple[str, str]] = set()

    # -- reading inside the transaction ----------------------------------------------------
    async def read(self, resource_type: str, resource_id: str) -> Stored:
        params: dict[str, object] = {"type": resource_type, "id": resource_id}
        query = (
            prebuilt.READ_IN
            if _with(params, self.partitions.reads(resource_type))
            else prebuilt.READ
        )
        row = (await self.conn.execute(query, params)).first()
        if row is None:
            raise not_found(resource_type, resource_id)
        if row.deleted:
            raise gone(resource_type, resource_id)
        return stored_from_row(row)

    def _own(self) -> str:
        return writes_to(self.partitions)

    async def match(self, resource_type: str, search: Search) -> list[str]:
        """Ids matching a condition in the own partition (a few at most are expected)."""
        query = self._queries.ids(resource_type, search, own=True)
        return [row.id for row in (await self.conn.execute(query.limit(MATCH_LIMIT))).all()]

    async def search(self, resource_type: str, search: Search) -> list[Stored]:
        """One page of the matches: ``search.count`` from ``search.offset``, in ``search.sort``."""
        query, params = self._queries.page(resource_type, search)
        return [stored_from_row(row) for row in (await self.conn.execute(query, params)).all()]

    async def page(
        self, resource_type: str, search: Search, *, total: str = "estimate"
    ) -> tuple[list[Stored], int | None]:
        """One page and how many match in all, as ``total`` (``_total``) asks: ``none`` counts
        nothing; ``accurate`` counts every match (which may mean probing a million rows); else
        the count is None when more than :data:`COUNT_LIMIT` match.

        A patient's matches are all found and sorted for the page anyway (see
        :meth:`SearchQueries.order <reko_fhir.store.search_sql.SearchQueries.order>`), so they
        are counted in the same query: on ``ix_reference_lookup`` alone where it can, else
        ``count(*) OVER ()``. Other pages come from walking an index and stop early; their
        matches are counted apart.
        """
        if total == "none" or not by_patient(search):
            query, params = self._queries.page(resource_type, search)
            found = [stored_from_row(row) for row in (await self.conn.execute(query, params)).all()]
            if total == "none":
                return found, None
            if total == "accurate":
                return found, await self.total(resource_type, search)
            return found, await self._count_at_most(resource_type, search, COUNT_LIMIT)
        query, params = self._queries.page(resource_type, search, counted=True)
        rows = (await self.conn.execute(query, params)).all()
        if not rows:  # past the end there is no row to carry the count
            return [], 0 if search.offset == 0 else await self.total(resource_type, search)
        return [stored_from_row(row) for row in rows], int(rows[0][-1])

    async def _count_at_most(self, resource_type: str, search: Search, most: int) -> int | None:
        ids = self._queries.ids(resource_type, search)
        bounded = select(func.count()).select_from(ids.limit(most + 1).subquery())
        counted = int((await self.conn.execute(bounded)).scalar_one())
        return counted if counted <= most else None

    async def about_patient(self, patient: str, types: tuple[str, ...]) -> list[Stored]:
        """The current resources of ``types`` whose ``patient`` is ``patient`` (``Patient/…``),
        newest first: one query through ``ix_reference_lookup`` for what the rules read."""
        params: dict[str, object] = {"types": list(types), "patient": patient}
        in_some = _with(params, self.partitions.visible)
        query = prebuilt.ABOUT_PATIENT_IN if in_some else prebuilt.ABOUT_PATIENT
        return [stored_from_row(row) for row in (await self.conn.execute(query, params)).all()]

    async def patient_rows(
        self, patient: str, types: tuple[str, ...], roles: list[str], organizations: list[str]
    ) -> PatientRows:
        """What the consent rules read, in one query (:mod:`reko_fhir.store.context`)."""
        return await patient_rows(
            self.conn, self.partitions, patient, types, roles=roles, organizations=organizations
        )

    async def read_current(self, resource_type: str, ids: list[str]) -> list[Stored]:
        """The current, not deleted ones of ``ids`` (unknown ids are left out)."""
        params: dict[str, object] = {"type": resource_type, "ids": list(ids)}
        in_some = _with(params, self.partitions.reads(resource_type))
        query = prebuilt.READ_CURRENT_IN if in_some else prebuilt.READ_CURRENT
        return [stored_from_row(row) for row in (await self.conn.execute(query, params)).all()]

    async def total(self, resource_type: str, search: Search) -> int:
        query = self._queries.ids(resource_type, search).with_only_columns(func.count())
        return int((await self.conn.execute(query.order_by(None))).scalar_one())

    async def one_match(self, resource_type: str, condition: Search) -> Stored | None:
        """The one resource a condition names in the own partition, None for none, 412 for
        several."""
        ids = await self.match(resource_type, condition)
        if not ids:
            self._unmatched.add((resource_type, condition.canonical()))
        if len(ids) > 1:
            message = f"{len(ids)} {resource_type} resources match {condition.canonical()}"
            raise OperationOutcomeError([error(IssueCode.MULTIPLE_MATCHES, message, resource_type)])
        return await self._read_own(resource_type, ids[0]) if ids else None

    async def _read_own(self, resource_type: str, resource_id: str) -> Stored:
        params = {"type": resource_type, "id": resource_id, "own": self._own()}
        row = (await self.conn.execute(prebuilt.OWN_NOT_DELETED, params)).first()
        if row is None:
            raise not_found(resource_type, resource_id)
        return stored_from_row(row)

    # -- writing ---------------------------------------------------------------------------
    async def create(
        self, resource: Json, *, condition: Search | None = None, resource_id: str | None = None
    ) -> Stored:
        """Create (or, with ``condition``, return the one match). A lost race on the
        ``conditional_create`` key raises IntegrityError: the caller retries the unit."""
        resource_type = str(resource["resourceType"])
        partition = self._own()
        if condition is not None and (resource_type, condition.canonical()) not in self._unmatched:
            existing = await self.one_match(resource_type, condition)
            if existing is not None:
                return existing
        new_id = resource_id or str(uuid.uuid4())
        stored = await self._write(resource_type, new_id, resource, 1)
        if condition is not None:
            row = {"partition": partition, "type": resource_type, "query": condition.canonical()}
            self.conn.pending.add(conditional_create, {**row, "id": new_id})
        return Stored(stored.resource, 1, stored.last_updated, created=True, partition=partition)

    async def update(self, resource: Json, *, if_match: int | None = None) -> Stored:
        resource_type, resource_id = update_target(resource)
        # Read first, lock only to write: a no-op takes no row lock. Every case Bundle resends
        # the unit's Organizations and PractitionerRoles unchanged; locked, they made every
        # Bundle on PostgreSQL wait for the one before it to commit (p99 15 s, issue 15).
        current = await self._lock_current(resource_type, resource_id, lock=False)
        for locked in (False, True):
            if current is None:
                # No update-as-create: ids are the server's. A client-chosen id could be one
                # another care unit holds, and the answer would then tell that it exists.
                raise not_found(resource_type, resource_id)
            check_version(resource_type, if_match, current.version, current.deleted)
            if not current.deleted and same_content(current.content, resource):
                # A no-op (https://hapifhir.io/hapi-fhir/docs/server_jpa/configuration.html):
                # no new version, no index rows, nothing for the outbox.
                return replace(stored_from_row(current), unchanged=True)
            if locked or not self.lock_rows:
                break
            # A change: lock the row, and decide again on what the lock holds.
            current = await self._lock_current(resource_type, resource_id)
        version = current.version + 1
        stored = await self._write(resource_type, resource_id, resource, version)
        return Stored(stored.resource, version, stored.last_updated, partition=current.partition)

    async def update_match(
        self, resource: Json, condition: Search, existing: Stored | None
    ) -> Stored:
        return await update_match(self, resource, condition, existing)

    async def delete(self, resource_type: str, resource_id: str) -> int | None:
        """A versioned tombstone; None when there was nothing to delete."""
        current = await self._lock_current(resource_type, resource_id)
        if current is None or current.deleted:
            return None
        version: int = current.version + 1
        self._wrote(resource_type)
        now = datetime.now(UTC)
        row = {"type": resource_type, "id": resource_id, "version": version}
        await self.conn.execute(
            insert(resource_version).values(
                **row, last_updated=now, deleted=True, content=None, partition=current.partition
            )
        )
        await self.conn.execute(
            update(resource_current)
            .where(resource_current.c.type == resource_type, resource_current.c.id == resource_id)
            .values(version=version, last_updated=now, deleted=True, content=None)
        )
        await self._unindex(resource_type, resource_id)
        await self.conn.execute(
            delete(conditional_create).where(
                conditional_create.c.type == resource_type, conditional_create.c.id == resource_id
            )
        )
        before = json.loads(current.content) if current.content else None
        self.changes.append(
            Change(resource_type, resource_id, version, None, current.partition, before)
        )
        return version

    async def _lock_current(
        self, resource_type: str, resource_id: str, *, lock: bool = True
    ) -> Any:
        """The current row in the own partition (another's answers as absent), locked (where
        the database locks rows) unless ``lock`` is False."""
        params = {"type": resource_type, "id": resource_id, "own": self._own()}
        query = prebuilt.OWN_CURRENT_LOCKED if lock and self.lock_rows else prebuilt.OWN_CURRENT
        return (await self.conn.execute(query, params)).first()

    async def _write(
        self, resource_type: str, resource_id: str, resource: Json, version: int
    ) -> Stored:
        self._wrote(resource_type)
        now = datetime.now(UTC)
        rows = version_rows(
            resource_type, resource_id, resource, version, now, partition=self._own()
        )
        pending = self.conn.pending
        pending.add(resource_version, rows.version)
        if version == 1:
            pending.add(resource_current, rows.version)
        else:
            await self.conn.execute(
                update(resource_current)
                .where(
                    resource_current.c.type == resource_type, resource_current.c.id == resource_id
                )
                .values(
                    version=version,
                    last_updated=now,
                    deleted=False,
                    content=rows.version["content"],
                )
            )
            await self._unindex(resource_type, resource_id)
        for table, index_rows in (
            (token_index, rows.tokens),
            (reference_index, rows.references),
            (date_index, rows.dates),
            (number_index, rows.numbers),
        ):
            if index_rows:
                pending.add(table, index_rows)
        partition = str(rows.version["partition"])
        self.changes.append(Change(resource_type, resource_id, version, rows.content, partition))
        return Stored(rows.content, version, now, partition=partition)

    def _wrote(self, resource_type: str) -> None:
        """A write of ``resource_type`` may match what matched nothing before."""
        self._unmatched = {key for key in self._unmatched if key[0] != resource_type}

    async def _unindex(self, resource_type: str, resource_id: str) -> None:
        for table in (token_index, reference_index, date_index, number_index):
            await self.conn.execute(
                delete(table).where(table.c.type == resource_type, table.c.id == resource_id)
            )

    # -- for ConditionsAtOnce (store/matching.py) -----------------------------------------
    _stored = staticmethod(stored_from_row)

    def _says_the_same(self, current: Stored, resource: Json) -> bool:
        return comparable(current.resource) == comparable(resource)


@dataclass(frozen=True, slots=True)
class VersionRows:
    """The rows one version of a resource is stored as: ``version`` goes to resource_version
    (and, as is, to resource_current), the rest to the index tables."""

    content: Json
    version: dict[str, Any]
    tokens: list[dict[str, Any]]
    references: list[dict[str, Any]]
    dates: list[dict[str, Any]]
    numbers: list[dict[str, Any]]


def same_content(stored_text: str | None, resource: Json) -> bool:
    """Whether ``resource`` says what the stored version says, ``meta.versionId`` and
    ``meta.lastUpdated`` aside (an unchanged resend)."""
    if stored_text is None:
        return False
    return comparable(json.loads(stored_text)) == comparable(resource)


def comparable(resource: Json) -> Json:
    meta = {k: v for k, v in (resource.get("meta") or {}).items() if k not in _SERVER_META}
    rest = {k: v for k, v in resource.items() if k != "meta"}
    return {**rest, "meta": meta} if meta else rest


_SERVER_META = frozenset({"versionId", "lastUpdated"})


def version_rows(
    resource_type: str,
    resource_id: str,
    resource: Json,
    version: int,
    now: datetime,
    *,
    partition: str = "",
) -> VersionRows:
    """The content (id, ``meta.versionId``, ``meta.lastUpdated`` set) and every row of it."""
    meta = {
        **(resource.get("meta") or {}),
        "versionId": str(version),
        "lastUpdated": instant_text(now),
    }
    content = {**resource, "id": resource_id, "meta": meta}
    text = json.dumps(content, ensure_ascii=False, separators=(",", ":"))
    owner = {"type": resource_type, "id": resource_id}
    return VersionRows(
        content,
        {
            **owner,
            "version": version,
            "last_updated": now,
            "deleted": False,
            "content": text,
            "partition": partition,
        },
        [{**owner, "param": p, "system": s, "value": v} for p, s, v in index.tokens(content)],
        [
            {**owner, "param": p, "target": t, "partition": partition, "last_updated": now}
            for p, t in index.references(content)
        ],
        [{**owner, "param": p, "low": lo, "high": hi} for p, lo, hi in index.dates(content)],
        [{**owner, "param": p, "value": v} for p, v in index.numbers(content)],
    )
