"""The tables of the FHIR store (SQLAlchemy Core, the same for SQLite and PostgreSQL).

Every version of every resource is kept (``resource_version``); ``resource_current`` holds the
newest for reads and search; the index tables hold search values of the current versions
(``unit_index``: the care units and staff holding each, for the care-unit filter); and
``conditional_create`` makes a conditional create land once even when requests race: its
primary key (type, query) is the constraint, not a check before the insert.
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData()

resource_version = Table(
    "resource_version",
    metadata,
    Column("type", String(64), primary_key=True),
    Column("id", String(64), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("last_updated", DateTime(timezone=True), nullable=False),
    Column("deleted", Boolean, nullable=False),
    Column("content", Text, nullable=True),
)

resource_current = Table(
    "resource_current",
    metadata,
    Column("type", String(64), primary_key=True),
    Column("id", String(64), primary_key=True),
    Column("version", Integer, nullable=False),
    Column("last_updated", DateTime(timezone=True), nullable=False),
    Column("deleted", Boolean, nullable=False),
    Column("content", Text, nullable=True),
    Index("ix_current_last_updated", "type", "last_updated"),
)

token_index = Table(
    "token_index",
    metadata,
    Column("type", String(64), nullable=False),
    Column("id", String(64), nullable=False),
    Column("param", String(64), nullable=False),
    Column("system", String(256), nullable=False),
    Column("value", String(256), nullable=False),
    Index("ix_token_lookup", "type", "param", "value", "system"),
    Index("ix_token_owner", "type", "id"),
)

reference_index = Table(
    "reference_index",
    metadata,
    Column("type", String(64), nullable=False),
    Column("id", String(64), nullable=False),
    Column("param", String(64), nullable=False),
    Column("target", String(256), nullable=False),
    Index("ix_reference_lookup", "type", "param", "target"),
    Index("ix_reference_owner", "type", "id"),
)

date_index = Table(
    "date_index",
    metadata,
    Column("type", String(64), nullable=False),
    Column("id", String(64), nullable=False),
    Column("param", String(64), nullable=False),
    Column("low", DateTime(timezone=True), nullable=False),
    Column("high", DateTime(timezone=True), nullable=False),
    Index("ix_date_lookup", "type", "param", "low", "high"),
    Index("ix_date_owner", "type", "id"),
)

unit_index = Table(
    "unit_index",
    metadata,
    Column("type", String(64), primary_key=True),
    Column("id", String(64), primary_key=True),
    Column("unit", String(256), primary_key=True),
    # Deliberately no index by unit: the care-unit filter only ever asks whether a known
    # resource is held by one of a few units. With such an index (as reference rows, before
    # 0007) PostgreSQL planned that probe, on the statistics of a new table, as a walk through
    # every resource of the unit: 148 s for a patient search at 1M rows.
)

conditional_create = Table(
    "conditional_create",
    metadata,
    Column("type", String(64), primary_key=True),
    Column("query", String(512), primary_key=True),
    Column("id", String(64), nullable=False),
)
