"""Migrations carry what a store already holds (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from importlib.resources import files
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, insert, inspect, select
from sqlalchemy.engine import Connection

from reko_fhir.store.schema import reference_index, resource_current, unit_index
from tests.store.conftest import postgres_schema


def _config(connection: Connection) -> Config:
    config = Config()
    config.set_main_option("script_location", str(files("reko_fhir.store").joinpath("migrations")))
    config.attributes["connection"] = connection
    return config


@asynccontextmanager
async def _store_url(database: str, tmp_path: Path) -> AsyncIterator[str]:
    """A new, empty database (a synchronous URL: alembic and these checks need no loop)."""
    if database == "sqlite":
        yield f"sqlite:///{tmp_path / 'old.sqlite3'}"
        return
    async with postgres_schema() as url:
        yield url.replace("postgresql://", "postgresql+psycopg://", 1)


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
async def test_a_store_from_before_the_care_unit_filter_gets_its_holders_indexed(
    database: str, tmp_path: Path
) -> None:
    """0006 finds who holds each stored resource, 0007 moves those rows to ``unit_index``."""
    procedure = {
        "resourceType": "Procedure",
        "id": "p1",
        "status": "completed",
        "subject": {"reference": "Patient/x"},
        "performer": [
            {"actor": {"reference": "PractitionerRole/r1"}},
            {
                "actor": {"reference": "PractitionerRole/r1"},
                "onBehalfOf": {"reference": "Organization/o1"},
            },
        ],
    }
    async with _store_url(database, tmp_path) as url:
        engine = create_engine(url)
        try:
            with engine.begin() as conn:
                command.upgrade(_config(conn), "0005")
                conn.execute(
                    insert(resource_current).values(
                        type="Procedure",
                        id="p1",
                        version=1,
                        last_updated=datetime.now(UTC),
                        deleted=False,
                        content=json.dumps(procedure),
                    )
                )
            with engine.begin() as conn:
                command.upgrade(_config(conn), "head")
            with engine.connect() as conn:
                held = conn.execute(select(unit_index.c.type, unit_index.c.id, unit_index.c.unit))
                params = conn.execute(select(reference_index.c.param).distinct())
                assert sorted(tuple(row) for row in held) == [
                    ("Procedure", "p1", "Organization/o1"),
                    ("Procedure", "p1", "PractitionerRole/r1"),
                ]
                assert list(params) == []  # the _unit rows moved; nothing else was indexed here
            with engine.begin() as conn:
                command.downgrade(_config(conn), "0006")
            with engine.connect() as conn:
                back = conn.execute(select(reference_index.c.param, reference_index.c.target))
                assert sorted(tuple(row) for row in back) == [
                    ("_unit", "Organization/o1"),
                    ("_unit", "PractitionerRole/r1"),
                ]
                assert not inspect(conn).has_table("unit_index")
        finally:
            engine.dispose()
