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

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Executable, Table
from sqlalchemy.engine import Connection, CursorResult, Dialect
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
        """Send every queued row on ``conn``'s transaction: one statement for all tables on
        PostgreSQL, one executemany per table on SQLite (it has no multi-table insert)."""
        batches, self._rows = self._rows, {}
        await conn.run_sync(_send, batches)


def _send(conn: Connection, batches: dict[Table, list[Row]]) -> None:
    """The driver's SQL in the dialect's paramstyle (``exec_driver_sql``): SQLAlchemy's
    compile-and-execute of an ``insert(table)`` cost more Python than SQLite spent inserting
    (about 0.1 ms a statement), and on PostgreSQL each statement is a round trip. Values are
    converted by the columns' own bind processors, as SQLAlchemy would (SQLite stores times
    as naive UTC text, booleans as 0/1)."""
    dialect = conn.dialect
    filled = [(table, rows) for table, rows in batches.items() if rows]
    if not filled:
        return
    if dialect.name == "postgresql":
        statement, parameters = _unnested(filled, dialect)
        conn.exec_driver_sql(statement, parameters)
        return
    for table, rows in filled:
        plan = _plan(table, tuple(rows[0]), dialect)
        values = [
            tuple(
                row[name] if convert is None else convert(row[name])
                for name, convert in zip(plan.columns, plan.converters, strict=True)
            )
            for row in rows
        ]
        conn.exec_driver_sql(plan.statement, values if len(values) > 1 else values[0])


@dataclass(frozen=True, slots=True)
class _Plan:
    """How rows with ``columns`` go into one table on one dialect."""

    columns: tuple[str, ...]
    converters: tuple[Callable[[Any], Any] | None, ...]
    statement: str  # SQLite: INSERT … VALUES (?, …); PostgreSQL: INSERT … SELECT FROM unnest
    casts: tuple[str, ...]


_PLANS: dict[tuple[Table, tuple[str, ...], str], _Plan] = {}


def _plan(table: Table, columns: tuple[str, ...], dialect: Dialect) -> _Plan:
    key = (table, columns, dialect.name)
    plan = _PLANS.get(key)
    if plan is None:
        types = [table.c[name].type for name in columns]
        names = ", ".join(f'"{name}"' for name in columns)
        casts = tuple(f"{kind.compile(dialect=dialect)}[]" for kind in types)
        # Names from the schema only (each row key is looked up as a column above), values bound.
        if dialect.paramstyle == "qmark":
            marks = ", ".join("?" for _ in columns)
            statement = f'INSERT INTO "{table.name}" ({names}) VALUES ({marks})'  # noqa: S608
        else:
            # Arrays in binary (%b): in text, psycopg escapes every quote of the JSON content
            # with a regular expression, which cost more than the rest of an audit append.
            arrays = ", ".join(
                f"%({table.name}__{name})b::{cast}"
                for name, cast in zip(columns, casts, strict=True)
            )
            statement = f'INSERT INTO "{table.name}" ({names}) SELECT * FROM unnest({arrays})'  # noqa: S608
        converters = tuple(kind.dialect_impl(dialect).bind_processor(dialect) for kind in types)
        plan = _PLANS[key] = _Plan(columns, converters, statement, casts)
    return plan


def _unnested(filled: list[tuple[Table, list[Row]]], dialect: Dialect) -> tuple[str, Row]:
    """Every table's rows in one PostgreSQL statement: each table's columns as arrays,
    ``unnest`` into rows, the inserts chained as data-modifying WITHs (each runs, whatever
    the last returns). The text depends only on which tables are written, so the driver
    prepares it once."""
    parts: list[str] = []
    parameters: Row = {}
    for table, rows in filled:
        plan = _plan(table, tuple(rows[0]), dialect)
        parts.append(plan.statement)
        for name, convert in zip(plan.columns, plan.converters, strict=True):
            column = [row[name] for row in rows]
            parameters[f"{table.name}__{name}"] = (
                column if convert is None else [convert(value) for value in column]
            )
    *first, last = parts
    chained = ", ".join(f"w{number} AS ({part})" for number, part in enumerate(first))
    return (f"WITH {chained} {last}" if first else last), parameters


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
