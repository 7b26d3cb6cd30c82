"""The FHIR store: one repository interface named after the FHIR interactions, on SQL.

SQLite is the embedded default; PostgreSQL the choice at scale. Schema migrations (alembic)
run when the store opens.
"""

from reko_fhir.store.index import DATE_PARAMS, instants
from reko_fhir.store.partition import EVERY, Partitions
from reko_fhir.store.repository import (
    COUNT_LIMIT,
    MATCH_LIMIT,
    SEARCHABLE,
    FhirRepository,
    FhirSession,
    Search,
    Stored,
    gone,
    not_found,
)
from reko_fhir.store.sql import SqlRepository

__all__ = [
    "COUNT_LIMIT",
    "DATE_PARAMS",
    "EVERY",
    "MATCH_LIMIT",
    "SEARCHABLE",
    "FhirRepository",
    "FhirSession",
    "Partitions",
    "Search",
    "SqlRepository",
    "Stored",
    "gone",
    "instants",
    "not_found",
]
