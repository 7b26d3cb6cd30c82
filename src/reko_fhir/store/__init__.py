"""The FHIR store: one repository interface named after the FHIR interactions, on SQL.

SQLite is the embedded default; PostgreSQL the choice at scale. Schema migrations (alembic)
run when the store opens.
"""

from reko_fhir.store.partition import EVERY, Partitions
from reko_fhir.store.repository import FhirRepository, FhirSession, Search, Stored
from reko_fhir.store.sql import SqlRepository

__all__ = [
    "EVERY",
    "FhirRepository",
    "FhirSession",
    "Partitions",
    "Search",
    "SqlRepository",
    "Stored",
]
