"""Bulk loading: many new resources at once, for loading a store and for benchmarks.

:func:`bulk_load` writes exactly the rows :meth:`Unit.create <reko_fhir.store.unit.Unit.create>`
writes for each resource (version 1 in ``resource_version`` and ``resource_current``, the
token, reference and date index rows — built by the same
:func:`~reko_fhir.store.unit.version_rows`), but a batch at a time: one transaction per batch
and one multi-row insert per table (DBAPI ``executemany``; on PostgreSQL ``COPY … FROM
STDIN``, several times faster there). Deliveries are queued for the repository's
subscriptions as a unit would queue them.

It is not the create interaction: it does **not** validate the resources (profiles, consent),
does **not** run conditional-create logic (no ``If-None-Exist``, no ``conditional_create``
rows), and keeps an ``id`` a resource already has (a new UUID when it has none); an id that is
already stored makes that batch fail and roll back with an ``IntegrityError`` (the batches
before it stay committed). The planner's statistics are refreshed at the end, and on
PostgreSQL the tables vacuumed (:meth:`SqlRepository.analyze
<reko_fhir.store.sql.SqlRepository.analyze>`).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterable, AsyncIterator, Iterable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Table, insert
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from reko_fhir.store import outbox
from reko_fhir.store.repository import Change, Json
from reko_fhir.store.schema import (
    date_index,
    number_index,
    reference_index,
    resource_current,
    resource_version,
    token_index,
)
from reko_fhir.store.sql import SqlRepository
from reko_fhir.store.unit import VersionRows, version_rows


async def bulk_load(
    repository: SqlRepository,
    resources: Iterable[Json] | AsyncIterable[Json],
    *,
    batch: int = 5000,
    partition: str = "",
) -> int:
    """Store ``resources`` as new resources (version 1) in the care unit ``partition``,
    ``batch`` per transaction.

    Returns how many were stored. The input dicts are not changed.
    """
    if batch < 1:
        raise ValueError("batch must be at least 1")
    stored = 0
    chunk: list[Json] = []
    async for resource in _each(resources):
        chunk.append(resource)
        if len(chunk) >= batch:
            stored += await _store(repository, chunk, partition)
            chunk = []
    if chunk:
        stored += await _store(repository, chunk, partition)
    await repository.analyze()  # the tables have grown: plans must see it
    return stored


async def _each(resources: Iterable[Json] | AsyncIterable[Json]) -> AsyncIterator[Json]:
    if isinstance(resources, AsyncIterable):
        async for resource in resources:
            yield resource
    else:
        for resource in resources:
            yield resource


async def _store(repository: SqlRepository, chunk: list[Json], partition: str) -> int:
    built: list[VersionRows] = []
    for resource in chunk:
        resource_id = resource.get("id")
        if not isinstance(resource_id, str) or not resource_id:
            resource_id = str(uuid.uuid4())
        kind = str(resource["resourceType"])
        rows = version_rows(kind, resource_id, resource, 1, _now(), partition=partition)
        built.append(rows)
    tables: list[tuple[Table, list[dict[str, Any]]]] = [
        (resource_version, [rows.version for rows in built]),
        (resource_current, [rows.version for rows in built]),
        (token_index, [token for rows in built for token in rows.tokens]),
        (reference_index, [ref for rows in built for ref in rows.references]),
        (date_index, [span for rows in built for span in rows.dates]),
        (number_index, [number for rows in built for number in rows.numbers]),
    ]
    async with repository.transaction() as conn:
        for table, values in tables:
            if values:
                await _insert(conn, table, values)
        if repository.subscriptions:
            changes = [
                Change(str(r.version["type"]), str(r.version["id"]), 1, r.content, partition)
                for r in built
            ]
            await outbox.enqueue(conn, changes, repository.subscriptions)
    return len(built)


async def _insert(conn: AsyncConnection, table: Table, values: list[dict[str, Any]]) -> None:
    """One multi-row insert: COPY on PostgreSQL (psycopg), executemany elsewhere."""
    if conn.dialect.name == "postgresql" and conn.dialect.driver == "psycopg":
        raw = await conn.get_raw_connection()
        columns = [column.name for column in table.columns]
        names = ", ".join(f'"{name}"' for name in columns)
        statement = f'COPY "{table.name}" ({names}) FROM STDIN'
        driver: Any = raw.driver_connection  # psycopg.AsyncConnection
        try:
            async with driver.cursor() as cursor, cursor.copy(statement) as copy:
                for row in values:
                    await copy.write_row([row[name] for name in columns])
        except conn.dialect.loaded_dbapi.Error as failure:
            # As SQLAlchemy reports an executemany's failure: IntegrityError for a duplicate id.
            raise DBAPIError.instance(
                statement, None, failure, conn.dialect.loaded_dbapi.Error, dialect=conn.dialect
            ) from failure
        return
    await conn.execute(insert(table), values)


def _now() -> datetime:
    return datetime.now(UTC)
