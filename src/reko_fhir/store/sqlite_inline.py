"""SQLite for the async engine, called on the event loop's own thread.

SQLAlchemy's async SQLite dialect drives aiosqlite, which runs every call (cursor, execute,
fetch, close, commit) on a thread of its own and hands the answer back through the loop: three
or four hand-overs per statement, each costing more than the statement itself on a local file
(measured: a store search 4.4 ms, a create 8.9 ms, of which SQLite itself ran well under 1 ms).
This module offers the aiosqlite interface the dialect uses (``async_creator``) but calls the
standard library's ``sqlite3`` directly. That blocks the loop only for as long as SQLite works:
in WAL mode readers never wait, and writers reach ``BEGIN IMMEDIATE`` only once they hold the
repository's writer lock (:mod:`reko_fhir.store.sql`), so SQLite's busy wait is not met in
normal operation.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Sequence
from typing import Any


class InlineCursor:
    """An aiosqlite-style cursor whose coroutines finish without suspending."""

    def __init__(self, cursor: sqlite3.Cursor) -> None:
        self._cursor = cursor

    async def __aenter__(self) -> InlineCursor:
        return self

    async def __aexit__(self, *_: object) -> None:
        self._cursor.close()

    @property
    def description(self) -> Any:
        return self._cursor.description

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    @property
    def lastrowid(self) -> int | None:
        return self._cursor.lastrowid

    @property
    def arraysize(self) -> int:
        return self._cursor.arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._cursor.arraysize = value

    async def execute(self, sql: str, parameters: Sequence[Any] = ()) -> InlineCursor:
        self._cursor.execute(sql, parameters)
        return self

    async def executemany(self, sql: str, parameters: Iterable[Sequence[Any]]) -> InlineCursor:
        self._cursor.executemany(sql, parameters)
        return self

    async def fetchone(self) -> Any:
        return self._cursor.fetchone()

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        return self._cursor.fetchmany(self._cursor.arraysize if size is None else size)

    async def fetchall(self) -> list[Any]:
        return self._cursor.fetchall()

    async def close(self) -> None:
        self._cursor.close()


class _Immediately:
    """Stands in for aiosqlite's queue of calls, which the dialect's isolation-level setter
    puts a ``(future, function)`` pair on: the function runs at once."""

    def put_nowait(self, item: tuple[Any, Callable[[], Any]]) -> None:
        future, function = item
        try:
            future.set_result(function())
        except Exception as failure:
            future.set_exception(failure)


class InlineConnection:
    """An aiosqlite-style connection around a ``sqlite3.Connection``."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._conn = connection
        self._tx = _Immediately()

    @property
    def _connection(self) -> sqlite3.Connection | None:
        """The open connection, None once closed (the dialect checks it before COMMIT)."""
        return self._conn if self._open else None

    _open = True

    @property
    def isolation_level(self) -> str | None:
        return self._conn.isolation_level

    def cursor(self) -> InlineCursor:
        return InlineCursor(self._conn.cursor())

    async def commit(self) -> None:
        self._conn.commit()

    async def rollback(self) -> None:
        self._conn.rollback()

    async def create_function(self, *args: Any, **kwargs: Any) -> None:
        self._conn.create_function(*args, **kwargs)

    async def close(self) -> None:
        self.stop()

    def stop(self) -> None:
        if self._open:
            self._open = False
            self._conn.close()


def inline_creator(database: str) -> Callable[[], Any]:
    """The ``async_creator`` for ``create_async_engine``: connections to ``database``."""

    async def connect() -> InlineConnection:
        # Not bound to the creating thread: the pool may close a connection from another.
        return InlineConnection(sqlite3.connect(database, check_same_thread=False))

    return connect
