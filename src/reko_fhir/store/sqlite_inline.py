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

import fcntl
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

CHECKPOINT_UNITS = 16
"""Writer transactions of one process between two checkpoints (or :data:`CHECKPOINT_SECONDS`)."""
CHECKPOINT_SECONDS = 0.5


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
        connection = sqlite3.connect(database, check_same_thread=False)
        # No checkpoint inside a commit: WalCheckpoints runs them, off the lock and the loop.
        connection.execute("PRAGMA wal_autocheckpoint=0")
        return InlineConnection(connection)

    return connect


class WalCheckpoints:
    """The WAL copied back into the database file on a thread of its own, after a writer has
    let go of the write lock.

    SQLite's automatic checkpoint runs inside the COMMIT that fills the WAL past 1,000 pages:
    on the event loop's thread (this module) and while the writer still holds the lock that
    every process's writers queue on (:mod:`reko_fhir.store.sql`). At 100,000 stored, one
    commit in about twenty-five then took 30-90 ms (the copy and its fsync) instead of 0.3 ms:
    three quarters of all commit time, with every writer of both processes waiting
    (issue 15). Here the connections turn it off and a PASSIVE checkpoint (which waits for
    no reader or writer, https://sqlite.org/pragma.html#pragma_wal_checkpoint) runs every
    :data:`CHECKPOINT_UNITS` writer transactions or :data:`CHECKPOINT_SECONDS`, one at a time
    per process, on a short-lived connection of its own; ``sqlite3`` lets go of the GIL while
    SQLite works, so the loop goes on meanwhile. A second pass, holding the writers' lock file,
    copies what they wrote during the first (a few frames and a sync), so that the WAL starts
    again from its beginning as it did with SQLite's own checkpoints."""

    def __init__(self, database: str, lock_file: str) -> None:
        self.database = database
        self.lock_file = lock_file
        self._units = 0
        self._last = time.monotonic()
        self._running = threading.Lock()

    def wrote(self) -> None:
        """A writer transaction ended: start a checkpoint when one is due and none runs."""
        self._units += 1
        due = self._units >= CHECKPOINT_UNITS or time.monotonic() - self._last >= CHECKPOINT_SECONDS
        if not due or not self._running.acquire(blocking=False):
            return
        self._units, self._last = 0, time.monotonic()
        threading.Thread(target=self._checkpoint, name="reko-wal-checkpoint", daemon=True).start()

    def _checkpoint(self) -> None:
        try:
            connection = sqlite3.connect(self.database, timeout=0)
            try:
                # The bulk of the copy beside the writers; then, holding the writers' lock, the
                # few frames they added meanwhile. Only a WAL checkpointed to its end when a
                # writer begins starts again from its first frame: without the second pass,
                # writers that never pause would make it grow without end.
                connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                descriptor = os.open(self.lock_file, os.O_RDWR | os.O_CREAT, 0o600)
                try:
                    fcntl.flock(descriptor, fcntl.LOCK_EX)
                    connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                finally:
                    os.close(descriptor)  # closing it releases the lock
            finally:
                connection.close()
        except (sqlite3.Error, OSError):
            pass  # busy or gone (a store being closed): the next writer's turn tries again
        finally:
            self._running.release()
