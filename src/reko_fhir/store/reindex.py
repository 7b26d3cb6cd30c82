"""Rebuilding the search index from the stored resources: after an upgrade that indexes more.

A store written by an older reko-fhir has no index rows for a search parameter that version did
not index yet (a CarePlan's ``activity-code`` and ``activity-date``, a Task's numbers): a search
on it silently misses those resources. :func:`reindex` recomputes every current resource's
token, reference, date and number rows from its stored content, with the same code a write uses
(:func:`~reko_fhir.store.unit.version_rows`), and replaces the old rows. Like HAPI's
``$reindex``; here an operator's command (``reko-fhir reindex``), safe beside a running service:
each batch is one writer transaction (the write lock a create takes), so a search sees a
resource's old rows or its new ones, never none. Running it twice changes nothing.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Table, delete, insert, select, tuple_

from reko_fhir.store.schema import (
    date_index,
    number_index,
    reference_index,
    resource_current,
    token_index,
)
from reko_fhir.store.sql import SqlRepository
from reko_fhir.store.unit import version_rows

INDEX_TABLES: tuple[Table, ...] = (token_index, reference_index, date_index, number_index)


async def reindex(
    repository: SqlRepository, resource_types: Sequence[str] = (), *, batch: int = 500
) -> Counter[str]:
    """Rebuild the index rows of every current resource (of ``resource_types``; all when
    empty), ``batch`` resources a transaction; returns how many of each type were reindexed."""
    if batch < 1:
        raise ValueError("batch must be at least 1")
    done: Counter[str] = Counter()
    after: tuple[str, str] = ("", "")
    while True:
        async with repository.transaction() as conn:
            query = (
                select(
                    resource_current.c.type,
                    resource_current.c.id,
                    resource_current.c.version,
                    resource_current.c.last_updated,
                    resource_current.c.content,
                    resource_current.c.partition,
                )
                .where(
                    resource_current.c.deleted.is_(False),
                    tuple_(resource_current.c.type, resource_current.c.id) > after,
                )
                .order_by(resource_current.c.type, resource_current.c.id)
                .limit(batch)
            )
            if resource_types:
                query = query.where(resource_current.c.type.in_(list(resource_types)))
            rows = (await conn.execute(query)).all()
            if not rows:
                return done
            owners = [(row.type, row.id) for row in rows]
            for table in INDEX_TABLES:
                await conn.execute(
                    delete(table).where(tuple_(table.c.type, table.c.id).in_(owners))
                )
            fresh: dict[Table, list[dict[str, Any]]] = {table: [] for table in INDEX_TABLES}
            for row in rows:
                content = json.loads(row.content)
                built = version_rows(
                    row.type,
                    row.id,
                    content,
                    row.version,
                    row.last_updated,
                    partition=row.partition,
                )
                fresh[token_index] += built.tokens
                fresh[reference_index] += built.references
                fresh[date_index] += built.dates
                fresh[number_index] += built.numbers
                done[row.type] += 1
            for table, values in fresh.items():
                if values:
                    await conn.execute(insert(table), values)
            after = owners[-1]
