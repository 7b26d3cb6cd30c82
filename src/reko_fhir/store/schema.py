"""The tables of the FHIR store (SQLAlchemy Core, the same for SQLite and PostgreSQL).

Every version of every resource is kept (``resource_version``); ``resource_current`` holds the
newest for reads and search; the index tables hold search values of the current versions
and ``conditional_create`` makes a conditional create land once even when requests race: its
primary key (partition, type, query) is the constraint, not a check before the insert. Every
version row carries the care-unit ``partition`` it lives in (:mod:`reko_fhir.store.partition`),
decided when the resource was created and never changed.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
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
    Column("partition", String(128), nullable=False, server_default=""),
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
    Column("partition", String(128), nullable=False, server_default=""),
    Index("ix_current_last_updated", "type", "last_updated"),
    # A unit's newest first: the care-unit filter and the default sort in one walk.
    Index("ix_current_partition", "type", "partition", "last_updated"),
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
    # The resource's, copied: a search naming one Patient reads its matches' partitions, count
    # and newest-first order from ix_reference_lookup alone (0010).
    Column("partition", String(128), nullable=False, server_default=""),
    Column("last_updated", DateTime(timezone=True), nullable=False),
    Index("ix_reference_lookup", "type", "param", "target", "partition", "last_updated", "id"),
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

number_index = Table(
    "number_index",
    metadata,
    Column("type", String(64), nullable=False),
    Column("id", String(64), nullable=False),
    Column("param", String(64), nullable=False),
    Column("value", BigInteger, nullable=False),
    Index("ix_number_lookup", "type", "param", "value"),
    Index("ix_number_owner", "type", "id"),
)

conditional_create = Table(
    "conditional_create",
    metadata,
    Column("partition", String(128), primary_key=True),
    Column("type", String(64), primary_key=True),
    Column("query", String(512), primary_key=True),
    Column("id", String(64), nullable=False),
)
