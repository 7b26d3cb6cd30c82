"""PostgreSQL reads a patient's matches from the index alone once their pages are all-visible:
a bulk load vacuums (``SqlRepository.analyze``), and 0011 has autovacuum follow the inserts."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.resources import files
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection

from reko_fhir.store import Partitions, Search, SqlRepository
from reko_fhir.store.bulk import bulk_load
from reko_fhir.store.search_sql import SearchQueries
from tests.store.conftest import fresh_schema, postgres_schema
from tests.store.test_repository import procedure

UNIT = Partitions.of_unit("SE2321000016-AAAA")
TABLES = ("resource_current", "token_index", "reference_index", "date_index", "number_index")
INSERTS = ["autovacuum_vacuum_insert_scale_factor=0", "autovacuum_vacuum_insert_threshold=10000"]


async def test_after_a_bulk_load_a_patients_search_reads_no_heap_page() -> None:
    """The load vacuums every table; the count and the page are then index-only scans of
    ``ix_reference_lookup`` that fetch no row from the table (before: ANALYZE alone, and 200
    matches were 200 heap fetches a scan)."""
    async with postgres_schema() as url:
        repo = await SqlRepository.open(url.replace("postgresql://", "postgresql+psycopg://", 1))
        try:
            others = (procedure(f"Patient/{n}") for n in range(2000))
            await bulk_load(repo, others, partition=UNIT.own)
            await bulk_load(repo, (procedure("Patient/p") for _ in range(200)), partition=UNIT.own)
            async with repo.engine.connect() as conn:
                counts = await conn.exec_driver_sql(
                    "SELECT relname, vacuum_count FROM pg_stat_user_tables "
                    "WHERE schemaname = current_schema()"
                )
                vacuumed = {name: count for name, count in counts}
            assert all(vacuumed[name] == 2 for name in TABLES), vacuumed  # once a load
            scans = await _reference_scans(repo)
            # A page is marked all-visible only when no open transaction may still not see its
            # rows: another session of the shared test server may hold one for a moment.
            for _ in range(40):
                if any(n["Heap Fetches"] for n in scans):
                    await asyncio.sleep(0.25)
                    await repo.analyze()
                    scans = await _reference_scans(repo)
        finally:
            await repo.close()
    assert [(n["Node Type"], n["Index Name"]) for n in scans] == [
        ("Index Only Scan", "ix_reference_lookup")
    ] * 2, scans  # the count and the page
    assert scans[0]["Actual Rows"] == 200  # the count reads every match …
    assert [n["Heap Fetches"] for n in scans] == [0, 0]  # … from the index alone


async def _reference_scans(repo: SqlRepository) -> list[dict[str, Any]]:
    """The plan nodes that read ``reference_index`` in Patient/p's first page, as run."""
    search = Search((("patient", "Patient/p"),), 20)
    built, params = SearchQueries(UNIT).page("Procedure", search, counted=True)
    sql = built.params(params).compile(
        dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}
    )
    async with repo.engine.connect() as conn:
        # The tables are small: a scan of them would win the plan without this.
        await conn.exec_driver_sql("SET enable_seqscan = off")
        await conn.exec_driver_sql("SET enable_bitmapscan = off")
        plan = (await conn.exec_driver_sql(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}")).scalar_one()
    return [n for n in _nodes(plan[0]["Plan"]) if n.get("Relation Name") == "reference_index"]


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
async def test_0011_sets_and_resets_the_autovacuum_insert_thresholds(
    database: str, tmp_path: Path
) -> None:
    """Up: the five tables searches read carry the thresholds; down: the defaults again. SQLite
    has no autovacuum: both ways leave its tables as they were, and usable."""
    with _url(database, tmp_path) as url:
        engine = create_engine(url)
        try:
            with engine.begin() as conn:
                command.upgrade(_config(conn), "0011")
            with engine.connect() as conn:
                assert _options(conn) == (
                    {name: INSERTS for name in TABLES} if database == "postgresql" else {}
                )
            with engine.begin() as conn:
                command.downgrade(_config(conn), "0010")
            with engine.connect() as conn:
                assert _options(conn) == {}
                assert conn.execute(text("SELECT count(*) FROM reference_index")).scalar() == 0
        finally:
            engine.dispose()


def _options(conn: Connection) -> dict[str, list[str]]:
    """Each store table's storage parameters (PostgreSQL's ``reloptions``)."""
    if conn.dialect.name != "postgresql":
        return {}
    rows = conn.execute(
        text(
            "SELECT relname, reloptions FROM pg_class WHERE reloptions IS NOT NULL "
            "AND relnamespace = current_schema()::regnamespace AND relkind = 'r'"
        )
    )
    return {name: sorted(options) for name, options in rows}


@contextmanager
def _url(database: str, tmp_path: Path) -> Iterator[str]:
    """A new, empty database (a synchronous URL: alembic needs no loop)."""
    if database == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.sqlite3'}"
        return
    with fresh_schema("reko_test") as url:
        yield url.replace("postgresql://", "postgresql+psycopg://", 1)


def _config(connection: Connection) -> Config:
    config = Config()
    config.set_main_option("script_location", str(files("reko_fhir.store").joinpath("migrations")))
    config.attributes["connection"] = connection
    return config


def _nodes(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield node
    for child in node.get("Plans", []):
        yield from _nodes(child)
