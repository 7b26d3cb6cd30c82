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
from sqlalchemy import column, create_engine, insert, inspect, select, table
from sqlalchemy.engine import Connection

from reko_fhir.store.schema import conditional_create, reference_index, resource_current
from tests.store.conftest import postgres_schema

# As 0007 made it (0008 replaced it with partitions).
unit_index = table("unit_index", column("type"), column("id"), column("unit"))


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
                command.upgrade(_config(conn), "0007")
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


HSA = "urn:oid:1.2.752.29.4.19"


def _row(kind: str, rid: str, content: dict[str, object]) -> dict[str, object]:
    return {
        "type": kind,
        "id": rid,
        "version": 1,
        "last_updated": datetime.now(UTC),
        "deleted": False,
        "content": json.dumps({"resourceType": kind, "id": rid, **content}),
    }


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
async def test_a_store_from_before_partitions_gets_each_resource_its_one_care_unit(
    database: str, tmp_path: Path
) -> None:
    """0008 puts each resource in the partition of the one care unit that holds it; a Patient
    in the unit whose resources are about them; anything held by two units, or none, in the
    unassigned partition. Downgrading finds the holders again."""
    rows = [
        _row("Organization", "o1", {"identifier": [{"system": HSA, "value": "SE2321000016-VC01"}]}),
        _row("Organization", "o2", {"identifier": [{"system": HSA, "value": "SE2321000016-PS03"}]}),
        _row(
            "Organization",
            "fk",
            {"identifier": [{"system": "urn:oid:2.5.4.97", "value": "2021005521"}]},
        ),
        _row("PractitionerRole", "r1", {"organization": {"reference": "Organization/o1"}}),
        _row(
            "Procedure",
            "p1",
            {
                "subject": {"reference": "Patient/x"},
                "performer": [{"actor": {"reference": "PractitionerRole/r1"}}],
            },
        ),
        _row("Patient", "x", {}),
        _row(
            "CareTeam",
            "t2",
            {
                "subject": {"reference": "Patient/y"},
                "managingOrganization": [
                    {"reference": "Organization/o1"},
                    {"reference": "Organization/o2"},
                ],
            },
        ),
        _row("Patient", "y", {}),
    ]
    async with _store_url(database, tmp_path) as url:
        engine = create_engine(url)
        try:
            with engine.begin() as conn:
                command.upgrade(_config(conn), "0005")
                conn.execute(insert(resource_current), [{k: v for k, v in r.items()} for r in rows])
                conn.execute(
                    insert(reference_index),
                    [
                        {
                            "type": "Procedure",
                            "id": "p1",
                            "param": "patient",
                            "target": "Patient/x",
                        },
                        {"type": "CareTeam", "id": "t2", "param": "patient", "target": "Patient/y"},
                    ],
                )
            with engine.begin() as conn:
                command.upgrade(_config(conn), "0007")
                conn.execute(
                    insert(
                        table("conditional_create", column("type"), column("query"), column("id"))
                    ),
                    [{"type": "Organization", "query": "identifier=x", "id": "fk"}],
                )
            with engine.begin() as conn:
                command.upgrade(_config(conn), "head")
            with engine.connect() as conn:
                found = dict(
                    (f"{t}/{i}", p)
                    for t, i, p in conn.execute(
                        select(
                            resource_current.c.type,
                            resource_current.c.id,
                            resource_current.c.partition,
                        )
                    )
                )
                assert found == {
                    "Organization/o1": "SE2321000016-VC01",
                    "Organization/o2": "SE2321000016-PS03",
                    "Organization/fk": "",  # an external actor: no care unit's own
                    "PractitionerRole/r1": "SE2321000016-VC01",
                    "Procedure/p1": "SE2321000016-VC01",
                    "Patient/x": "SE2321000016-VC01",
                    "CareTeam/t2": "",  # two units name it: the platform sorts it out
                    "Patient/y": "",
                }
                kept = conn.execute(select(conditional_create)).all()
                assert [tuple(r) for r in kept] == [("", "Organization", "identifier=x", "fk")]
                assert not inspect(conn).has_table("unit_index")
            with engine.begin() as conn:
                command.downgrade(_config(conn), "0007")
            with engine.connect() as conn:
                held = sorted(
                    tuple(r)
                    for r in conn.execute(
                        select(unit_index.c.type, unit_index.c.id, unit_index.c.unit)
                    )
                )
                assert ("Procedure", "p1", "PractitionerRole/r1") in held
                assert ("CareTeam", "t2", "Organization/o2") in held
                assert "partition" not in {
                    c["name"] for c in inspect(conn).get_columns("resource_current")
                }
        finally:
            engine.dispose()


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
async def test_reference_rows_get_their_resources_partition_and_time(
    database: str, tmp_path: Path
) -> None:
    """0010 copies each resource's partition and ``last_updated`` into its reference rows,
    leaves out rows of deleted resources and rows twice over; downgrading drops the columns
    and the index the search reads."""
    moment = datetime(2025, 3, 1, 12, 30, tzinfo=UTC)
    old_reference = table(
        "reference_index", column("type"), column("id"), column("param"), column("target")
    )
    async with _store_url(database, tmp_path) as url:
        engine = create_engine(url)
        try:
            with engine.begin() as conn:
                command.upgrade(_config(conn), "0009")
                conn.execute(
                    insert(resource_current),
                    [
                        {**_row("Procedure", "p1", {}), "last_updated": moment, "partition": "U1"},
                        {**_row("Procedure", "gone", {}), "deleted": True, "partition": "U1"},
                    ],
                )
                conn.execute(
                    insert(old_reference),
                    [
                        {
                            "type": "Procedure",
                            "id": "p1",
                            "param": "patient",
                            "target": "Patient/x",
                        },
                        {
                            "type": "Procedure",
                            "id": "p1",
                            "param": "patient",
                            "target": "Patient/x",
                        },
                        {
                            "type": "Procedure",
                            "id": "p1",
                            "param": "subject",
                            "target": "Patient/x",
                        },
                        {
                            "type": "Procedure",
                            "id": "gone",
                            "param": "patient",
                            "target": "Patient/x",
                        },
                    ],
                )
            with engine.begin() as conn:
                command.upgrade(_config(conn), "0010")
            with engine.connect() as conn:
                rows = conn.execute(select(reference_index)).all()
                found = sorted(
                    (r.id, r.param, r.target, r.partition, r.last_updated.replace(tzinfo=UTC))
                    for r in rows
                )
                assert found == [
                    ("p1", "patient", "Patient/x", "U1", moment),
                    ("p1", "subject", "Patient/x", "U1", moment),
                ]
                lookup = next(
                    i
                    for i in inspect(conn).get_indexes("reference_index")
                    if i["name"] == "ix_reference_lookup"
                )
                assert lookup["column_names"] == [
                    "type",
                    "param",
                    "target",
                    "partition",
                    "last_updated",
                    "id",
                ]
            with engine.begin() as conn:
                command.downgrade(_config(conn), "0009")
            with engine.connect() as conn:
                back = conn.execute(select(old_reference)).all()
                assert sorted(tuple(r) for r in back) == [
                    ("Procedure", "p1", "patient", "Patient/x"),
                    ("Procedure", "p1", "subject", "Patient/x"),
                ]
                names = {c["name"] for c in inspect(conn).get_columns("reference_index")}
                assert names == {"type", "id", "param", "target"}
                indexes = {
                    i["name"]: i["column_names"]
                    for i in inspect(conn).get_indexes("reference_index")
                }
                assert indexes == {
                    "ix_reference_lookup": ["type", "param", "target"],
                    "ix_reference_owner": ["type", "id"],
                }
        finally:
            engine.dispose()
