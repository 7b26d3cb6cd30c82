"""The repository on SQL: SQLite (embedded default) and PostgreSQL, one implementation.

Every write runs in a :class:`~reko_fhir.store.unit.Unit`, one database transaction: version
row, current row and index rows commit together. SQLite runs in WAL mode on the event loop's
thread (:mod:`~reko_fhir.store.sqlite_inline`); a writer first waits its turn (per process, then
across processes on a lock file) and then takes SQLite's write lock at ``BEGIN``
(``BEGIN IMMEDIATE``), so writers queue instead of failing half-way or blocking the loop;
PostgreSQL locks the current row (``FOR UPDATE``). A conditional create that loses a race on
the ``conditional_create`` key is run again once, and then finds the winner. No writer may
open another writer inside its transaction: it would wait for itself.
"""

from __future__ import annotations

import asyncio
import copy
import fcntl
import os
import random
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager, nullcontext
from importlib.resources import files
from typing import Any, TypeVar

from alembic import command
from alembic.config import Config
from sqlalchemy import event, func, select, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from reko_fhir.outcomes import IssueCode, OperationOutcomeError, error
from reko_fhir.store import audit as _audit
from reko_fhir.store import outbox
from reko_fhir.store.conditions import in_partitions
from reko_fhir.store.partition import EVERY, Partitions
from reko_fhir.store.repository import (
    Bucket,
    FhirSession,
    KvaCount,
    Search,
    SingleInteractions,
    Stored,
    gone,
    not_found,
)
from reko_fhir.store.schema import metadata, resource_version
from reko_fhir.store.sqlite_inline import WalCheckpoints, inline_creator
from reko_fhir.store.statistics import narrowed
from reko_fhir.store.statistics_sql import kva_counts
from reko_fhir.store.unit import Unit, stored_from_row

T = TypeVar("T")


def run_migrations(connection: Connection) -> None:
    """Bring the schema to the newest revision (alembic), on ``connection``."""
    config = Config()
    config.set_main_option("script_location", str(files("reko_fhir.store").joinpath("migrations")))
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


class SqlRepository(SingleInteractions):
    """The FHIR store on an async SQLAlchemy engine, as one caller sees it: ``partitions``
    (:meth:`scoped`) say what it reads and where it writes; the repository as opened reads
    every partition and writes to the unassigned one, for callers inside the process."""

    partitions: Partitions = EVERY

    def __init__(
        self, engine: AsyncEngine, subscriptions: Sequence[outbox.Subscription] = ()
    ) -> None:
        self.engine = engine
        self.is_sqlite = engine.dialect.name == "sqlite"
        self.subscriptions = tuple(subscriptions)
        # SQLite has one writer at a time: the connections of this process queue here, woken
        # in turn, instead of in SQLite's busy handler, which sleeps up to 100 ms per retry
        # and so leaves the lock idle (p99 of concurrent writes was 2.4 s).
        self._writers = asyncio.Lock() if self.is_sqlite else None
        # … and the processes on one file queue on a lock file beside it, for the same reason.
        database = engine.url.database if self.is_sqlite else None
        on_file = database is not None and database not in ("", ":memory:")
        self._lock_file = f"{database}-writer.lock" if on_file else None
        self._checkpoints = (
            WalCheckpoints(str(database), self._lock_file) if self._lock_file else None
        )
        # PostgreSQL: reads in autocommit. A read is one statement (two at most, and READ
        # COMMITTED gives each statement its own snapshot anyway), so BEGIN and ROLLBACK were
        # two of its three round trips; on 2 busy cores each round trip waits for the server
        # process to be scheduled (patient search p99 3.9 x /metadata's). SQLite has no round
        # trips: unchanged.
        self._reads = (
            engine if self.is_sqlite else engine.execution_options(isolation_level="AUTOCOMMIT")
        )

    @classmethod
    async def open(
        cls,
        url: str,
        *,
        subscriptions: Sequence[outbox.Subscription] = (),
        **engine_options: Any,
    ) -> SqlRepository:
        """Connect, migrate, and return the repository; writes enqueue for ``subscriptions``."""
        parsed = make_url(url)
        if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
            # sqlite3 on the loop's thread, not aiosqlite's (see sqlite_inline).
            engine_options.setdefault("async_creator", inline_creator(str(parsed.database)))
        elif parsed.get_backend_name() == "postgresql":
            # SQLAlchemy keeps 5 connections and closes each one beyond them when it is given
            # back: at 8 requests in flight per worker, every request past the fifth paid for a
            # new server process (fork, catalogue caches). Connections are opened on demand.
            engine_options.setdefault("pool_size", 16)
            engine_options.setdefault("max_overflow", 16)
        engine = create_async_engine(url, **engine_options)
        if engine.dialect.name == "sqlite":
            _configure_sqlite(engine)
        repository = cls(engine, subscriptions)
        # Several workers may start at once: one migrates, the others wait and find it done.
        async with repository._writer() as conn, conn.begin():
            if engine.dialect.name == "postgresql":
                await conn.execute(text("SELECT pg_advisory_xact_lock(7251130)"))
            await conn.run_sync(run_migrations)
        return repository

    async def close(self) -> None:
        await self.engine.dispose()

    def scoped(self, partitions: Partitions) -> SqlRepository:
        """The same store (engine, writer queue, subscriptions) seen through ``partitions``."""
        view = copy.copy(self)
        view.partitions = partitions
        return view

    def _unit(self, conn: AsyncConnection, *, lock_rows: bool = False) -> Unit:
        return Unit(conn, lock_rows=lock_rows, partitions=self.partitions)

    @asynccontextmanager
    async def _writer(self) -> AsyncIterator[AsyncConnection]:
        """A connection marked as a writer: on SQLite only writers take the lock at BEGIN
        (see below), one connection of this process at a time. The connection is taken from
        the pool (and given back) outside the lock across processes: only the transaction
        needs it, and every other process's writers wait as long as it is held."""
        async with self._writers or nullcontext(), self.engine.connect() as conn:
            await conn.execution_options(reko_writer=True)
            async with _file_lock(self._lock_file):
                yield conn
            if self._checkpoints is not None:  # after the lock: see WalCheckpoints
                self._checkpoints.wrote()

    @asynccontextmanager
    async def unit(self) -> AsyncIterator[Unit]:
        """One database transaction: commits when the block ends, rolls back on an exception."""
        async with self._writer() as conn, conn.begin():
            unit = self._unit(conn, lock_rows=not self.is_sqlite)
            yield unit
            # The access log of the write, in the write's own transaction, and in the same
            # flush as the unit's held-back inserts (sent before anything else reads).
            _audit.queue(unit.conn.pending, unit.audit)
            await unit.conn.flush()
            # Still inside the transaction: the deliveries commit with the write.
            if self.subscriptions and unit.changes:
                await outbox.enqueue(conn, unit.changes, self.subscriptions)
            await _audit.ship(conn, unit.audit, subscriptions=self.subscriptions)

    @asynccontextmanager
    async def transaction(self, *, writer: bool = True) -> AsyncIterator[AsyncConnection]:
        """A bare transaction for the outbox and other tables beside the resources."""
        if not writer:
            async with self.engine.connect() as conn, conn.begin():
                yield conn
            return
        async with self._writer() as conn, conn.begin():
            yield conn

    @asynccontextmanager
    async def statement(self) -> AsyncIterator[AsyncConnection]:
        """A connection on which each statement commits by itself: PostgreSQL's autocommit, for
        a write that is one statement (the access log's batches); on SQLite a writer's
        transaction, as :meth:`transaction` (it has no round trips to save)."""
        if self.is_sqlite:
            async with self.transaction() as conn:
                yield conn
            return
        async with self._reads.connect() as conn:
            yield conn

    async def in_unit(self, work: Callable[[FhirSession], Awaitable[T]]) -> T:
        """Run ``work`` in a unit; again once if it lost a uniqueness race, to see the winner."""
        try:
            async with self.unit() as unit:
                return await work(unit)
        except IntegrityError:
            pass
        try:
            async with self.unit() as unit:
                return await work(unit)
        except IntegrityError:
            message = "the resource was changed at the same time; send the request again"
            raise OperationOutcomeError([error(IssueCode.CONFLICT, message, None)]) from None

    async def in_snapshot(self, work: Callable[[FhirSession], Awaitable[T]]) -> T:
        """``work`` on a reader's transaction (no write lock), rolled back."""
        async with self.engine.connect() as conn:
            transaction = await conn.begin()
            try:
                return await work(self._unit(conn))
            finally:
                await transaction.rollback()

    # -- reads (the writes are SingleInteractions' units) ------------------------------------
    async def read(self, resource_type: str, resource_id: str) -> Stored:
        async with self._reads.connect() as conn:
            return await self._unit(conn).read(resource_type, resource_id)

    async def vread(self, resource_type: str, resource_id: str, version: int) -> Stored:
        query = select(resource_version).where(
            resource_version.c.type == resource_type,
            resource_version.c.id == resource_id,
            resource_version.c.version == version,
            in_partitions(resource_version.c.partition, self.partitions.reads(resource_type)),
        )
        async with self._reads.connect() as conn:
            row = (await conn.execute(query)).first()
        if row is None:
            raise not_found(resource_type, f"{resource_id}/_history/{version}")
        if row.deleted:
            raise gone(resource_type, f"{resource_id}/_history/{version}")
        return stored_from_row(row)

    async def history(self, resource_type: str, resource_id: str | None = None) -> list[Stored]:
        """Every version (of a type, of one resource), newest first; deletions are in the
        history but carry no content."""
        query = select(resource_version).where(
            resource_version.c.deleted.is_(False),
            resource_version.c.type == resource_type,
            in_partitions(resource_version.c.partition, self.partitions.reads(resource_type)),
        )
        if resource_id is not None:
            query = query.where(resource_version.c.id == resource_id)
        order = (resource_version.c.last_updated.desc(), resource_version.c.version.desc())
        async with self._reads.connect() as conn:
            rows = (await conn.execute(query.order_by(*order))).all()
        return [stored_from_row(row) for row in rows]

    async def search(self, resource_type: str, search: Search) -> list[Stored]:
        async with self._reads.connect() as conn:
            return await self._unit(conn).search(resource_type, search)

    async def about_patient(self, patient: str, types: tuple[str, ...]) -> list[Stored]:
        async with self._reads.connect() as conn:
            return await self._unit(conn).about_patient(patient, types)

    async def read_current(self, resource_type: str, ids: list[str]) -> list[Stored]:
        async with self._reads.connect() as conn:
            return await self._unit(conn).read_current(resource_type, ids)

    async def page(
        self, resource_type: str, search: Search, *, total: str = "estimate"
    ) -> tuple[list[Stored], int | None]:
        """One page of the matches and how many match in all (see :meth:`Unit.page`)."""
        async with self._reads.connect() as conn:
            return await self._unit(conn).page(resource_type, search, total=total)

    async def total(self, resource_type: str, search: Search) -> int:
        async with self._reads.connect() as conn:
            return await self._unit(conn).total(resource_type, search)

    async def kva_counts(
        self, buckets: Sequence[Bucket], units: frozenset[str] | None = None
    ) -> list[KvaCount]:
        """The KVÅ statistics in four queries (:mod:`reko_fhir.store.statistics_sql`)."""
        async with self._reads.connect() as conn:
            return await kva_counts(conn, buckets, narrowed(self.partitions.visible, units))

    async def count(self, resource_type: str | None = None) -> int:
        """Stored versions (of a type): what a test compares to see that nothing was written."""
        query = select(func.count()).select_from(resource_version)
        if resource_type:
            query = query.where(resource_version.c.type == resource_type)
        async with self.engine.connect() as conn:
            return int((await conn.execute(query)).scalar_one())

    async def analyze(self) -> None:
        """Refresh the planner's statistics, as after a bulk load: planned on the statistics of
        a nearly empty table, PostgreSQL may scan a million rows for a search of a few.

        On PostgreSQL also VACUUM: it marks the loaded pages all-visible, without which an
        index-only scan (a patient's search on ``ix_reference_lookup``) reads every match's
        heap page as well. Autovacuum would do it minutes later, amid the traffic, or never
        where it is off (14 s at 1,000,000 Procedures; their load took 400 s). VACUUM cannot
        run in a transaction: autocommit."""
        if self.is_sqlite:
            async with self.transaction() as conn:
                # Sampled (at most 1,000 rows an index), so seconds, not minutes, at 1M rows.
                await conn.exec_driver_sql("PRAGMA analysis_limit=1000")
                await conn.exec_driver_sql("ANALYZE")
            return
        tables = ", ".join(table.name for table in metadata.sorted_tables)
        async with self._reads.connect() as conn:
            await conn.exec_driver_sql(f"VACUUM (ANALYZE) {tables}")

    async def row_counts(self) -> dict[str, int]:
        """Rows in every table of the store: proof that a refused request changed nothing."""
        counts: dict[str, int] = {}
        async with self.engine.connect() as conn:
            for table in metadata.sorted_tables:
                query = select(func.count()).select_from(table)
                counts[table.name] = int((await conn.execute(query)).scalar_one())
        return counts


@asynccontextmanager
async def _file_lock(path: str | None) -> AsyncIterator[None]:
    """An exclusive ``flock`` on ``path`` (nothing for None), waited for in a thread so the
    holder's release wakes the next process at once."""
    if path is None:
        yield
        return
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        waiting = asyncio.ensure_future(asyncio.to_thread(fcntl.flock, descriptor, fcntl.LOCK_EX))
        try:
            await asyncio.shield(waiting)
        except BaseException:
            # Cancelled while the thread still waits: the descriptor (and with it a lock the
            # thread may yet get) is closed when the thread returns.
            waiting.add_done_callback(lambda _: os.close(descriptor))
            raise
    except BaseException:
        os.close(descriptor)
        raise
    try:
        yield
    finally:
        os.close(descriptor)  # closing the descriptor releases its lock


def _configure_sqlite(engine: AsyncEngine) -> None:
    """WAL for readers beside a writer; BEGIN IMMEDIATE so writers queue (busy timeout 30 s)."""

    @event.listens_for(engine.sync_engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # SQLAlchemy emits BEGIN itself, below
        cursor = dbapi_connection.cursor()
        _switch_to_wal(cursor)
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _begin(conn: Any) -> None:
        # Writers take the write lock at once, so two never deadlock upgrading a read lock;
        # readers begin deferred and, in WAL, read beside a writer without waiting.
        writer = conn.get_execution_options().get("reko_writer", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if writer else "BEGIN")


def _switch_to_wal(cursor: Any) -> None:
    """Turn on WAL, retrying with short waits: on a new file, connections opening at once can
    block each other switching the journal mode, and a long busy wait then only times out."""
    cursor.execute("PRAGMA busy_timeout=50")
    deadline = time.monotonic() + 30
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(random.uniform(0.005, 0.05))  # noqa: S311 -- jitter breaks the lockstep
