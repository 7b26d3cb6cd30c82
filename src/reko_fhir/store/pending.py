"""A unit's inserts held back and sent together: one executemany per table.

A validated create wrote its version row, its current row, each kind of index row and then its
Provenance's rows as a statement each, and its AuditEvent after them: 9 inserts for one POST,
each paying SQLAlchemy's per-statement cost (issue 15's profile: a quarter of the request).
Queued here instead, they go as one statement per table when the unit next runs any other
statement (a read must see what the unit wrote before it) and before it commits. Inserts into
different tables commute; rows of one table keep their order. A failing insert (a lost race on
the ``conditional_create`` key) raises the same IntegrityError, only later: at the flush, still
inside the unit, where :meth:`~reko_fhir.store.sql.SqlRepository.in_unit` retries it.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Executable, Insert, Table, insert
from sqlalchemy.engine import CursorResult, Dialect
from sqlalchemy.ext.asyncio import AsyncConnection

Row = dict[str, Any]


class PendingInserts:
    """Rows to insert, by table (in the order the tables were first written)."""

    def __init__(self) -> None:
        self._rows: dict[Table, list[Row]] = {}

    def __bool__(self) -> bool:
        return bool(self._rows)

    def add(self, table: Table, rows: Row | list[Row]) -> None:
        queued = self._rows.setdefault(table, [])
        if isinstance(rows, dict):
            queued.append(rows)
        else:
            queued.extend(rows)

    async def flush(self, conn: AsyncConnection) -> None:
        """Send every queued row on ``conn``'s transaction, a statement per table."""
        batches, self._rows = self._rows, {}
        for table, rows in batches.items():
            if rows:
                await conn.execute(_insert(table), rows)


_INSERTS: dict[Table, Insert] = {}


def _insert(table: Table) -> Insert:
    # Built once: a statement built per write pays for its cache key every time.
    statement = _INSERTS.get(table)
    if statement is None:
        statement = _INSERTS[table] = insert(table)
    return statement


class FlushingConnection:
    """The unit's connection: every statement run on it first sends the pending inserts, so
    what the unit reads (and what the database checks) includes what it wrote."""

    def __init__(self, conn: AsyncConnection, pending: PendingInserts) -> None:
        self.connection = conn
        self.pending = pending

    @property
    def dialect(self) -> Dialect:
        return self.connection.dialect

    async def flush(self) -> None:
        if self.pending:
            await self.pending.flush(self.connection)

    async def execute(self, statement: Executable, parameters: Any = None) -> CursorResult[Any]:
        if self.pending:
            await self.pending.flush(self.connection)
        return await self.connection.execute(statement, parameters)
