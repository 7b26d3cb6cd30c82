"""The store's interface, named after the FHIR interactions (https://hl7.org/fhir/R4/http.html).

Implementations: :class:`reko_fhir.store.sql.SqlRepository` (SQLite embedded, PostgreSQL at
scale). Failures are :class:`~reko_fhir.outcomes.OperationOutcomeError` with the status the
interaction defines (404 unknown, 410 deleted, 412 stale version or several matches).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

Json = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Stored:
    """A resource as stored: ``meta.versionId`` and ``meta.lastUpdated`` set."""

    resource: Json
    version: int
    last_updated: datetime
    created: bool = False

    @property
    def id(self) -> str:
        return str(self.resource["id"])


@dataclass(frozen=True, slots=True)
class Change:
    """One version written in a unit of work; ``resource`` is None for a deletion."""

    resource_type: str
    resource_id: str
    version: int
    resource: Json | None


@dataclass(frozen=True, slots=True)
class Search:
    """Search parameters as (name, value) pairs, e.g. ``("identifier", "sys|123")``."""

    params: tuple[tuple[str, str], ...] = ()
    count: int = 50
    offset: int = 0
    sort: tuple[str, ...] = ()  # "_lastUpdated", "-_lastUpdated", "_id", "-_id"
    units: tuple[str, ...] | None = None
    """Only resources held by these (``Organization/…``, ``PractitionerRole/…``); None: all."""

    @classmethod
    def parse(cls, query: str, count: int = 50) -> Search:
        """``identifier=sys|1&patient=Patient/2`` (as in ``If-None-Exist``)."""
        from urllib.parse import parse_qsl  # noqa: PLC0415 - only parsing needs it

        return cls(tuple(sorted(parse_qsl(query, keep_blank_values=True))), count)

    def canonical(self) -> str:
        """One spelling per meaning, so equal conditions collide on the unique constraint."""
        return "&".join(f"{k}={v}" for k, v in sorted(self.params))


class Repository(Protocol):
    async def create(self, resource: Json, *, if_none_exist: Search | None = None) -> Stored: ...

    async def read(self, resource_type: str, resource_id: str) -> Stored: ...

    async def vread(self, resource_type: str, resource_id: str, version: int) -> Stored: ...

    async def update(self, resource: Json, *, if_match: int | None = None) -> Stored: ...

    async def conditional_update(self, resource: Json, condition: Search) -> Stored: ...

    async def delete(self, resource_type: str, resource_id: str) -> int | None: ...

    async def history(self, resource_type: str, resource_id: str | None = None) -> list[Stored]: ...

    async def search(self, resource_type: str, search: Search) -> list[Stored]: ...

    async def page(
        self, resource_type: str, search: Search, *, total: str = "estimate"
    ) -> tuple[list[Stored], int | None]: ...

    async def total(self, resource_type: str, search: Search) -> int: ...

    async def count(self, resource_type: str | None = None) -> int: ...

    async def close(self) -> None: ...
