"""The repository suite runs on SQLite, on PostgreSQL and in memory (the interactions) (127.0.0.1:5432, database test).

Each PostgreSQL test gets a schema of its own, dropped afterwards. In CI PostgreSQL must be
there: a missing server fails the tests instead of skipping them.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

import psycopg
import pytest

from reko_fhir.store import SqlRepository
from reko_fhir.store.memory import MemoryRepository

PG_DSN = os.environ.get("REKO_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


def _postgres_available() -> bool:
    try:
        with psycopg.connect(PG_DSN, connect_timeout=3):
            return True
    except psycopg.OperationalError:
        return False


@pytest.fixture(params=["sqlite", "postgresql"])
async def repo(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[SqlRepository]:
    """The SQL implementations, for what only they have (units, counts, migrations)."""
    async with _sql(request.param, tmp_path) as repository:
        yield repository


@asynccontextmanager
async def _sql(kind: str, tmp_path: Path) -> AsyncIterator[SqlRepository]:
    if kind == "sqlite":
        repository = await SqlRepository.open(f"sqlite+aiosqlite:///{tmp_path / 'store.sqlite3'}")
        yield repository
        await repository.close()
        return
    async with postgres_schema() as url:
        postgres = url.replace("postgresql://", "postgresql+psycopg://", 1)
        repository = await SqlRepository.open(postgres, pool_size=20, max_overflow=40)
        try:
            yield repository
        finally:
            await repository.close()


@pytest.fixture(params=["sqlite", "postgresql", "memory"])
async def store(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[SqlRepository | MemoryRepository]:
    """Every implementation of the FHIR interactions, for the tests of the interactions."""
    if request.param == "memory":
        yield MemoryRepository()
        return
    async with _sql(request.param, tmp_path) as repository:
        yield repository


@asynccontextmanager
async def postgres_schema() -> AsyncIterator[str]:
    """A fresh schema in the test database, dropped afterwards; yields a URL that selects it."""
    with fresh_schema("reko_test") as url:
        yield url


@contextmanager
def fresh_schema(prefix: str) -> Iterator[str]:
    """:func:`postgres_schema` for synchronous callers (a server started as a process)."""
    if not _postgres_available():
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL is required in CI ({PG_DSN})")
        pytest.skip(f"no PostgreSQL at {PG_DSN} on this machine; CI runs these")
    schema = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_DSN, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield f"{PG_DSN}?options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(PG_DSN, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
