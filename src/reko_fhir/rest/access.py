"""What the router asks before and after each interaction: may this caller do it, and see it?

The router knows FHIR, not tokens: an :class:`Access` (built per request by the security layer,
:mod:`reko_fhir.security.access`) answers. :data:`OPEN` answers yes to everything; it is for
callers inside the process (pull, tests of FHIR semantics), never for HTTP requests.
"""

from __future__ import annotations

from typing import Any, Protocol

from reko_fhir.rest.store_rules import Reader
from reko_fhir.store import Search, Stored

Json = dict[str, Any]


class Access(Protocol):
    async def allow(self, resource_type: str, interaction: str) -> None:
        """Raise an OperationOutcomeError (403) when the caller may not do ``interaction``."""

    async def restrict(self, reader: Reader, resource_type: str, search: Search) -> Search:
        """``search`` narrowed to what the caller may see (in the query, so counts hold)."""

    async def visible(self, reader: Reader, resource_type: str, resource_id: str) -> bool:
        """Whether the caller may see this resource; an invisible one answers as absent."""

    async def sees(self, reader: Reader, stored: Stored) -> bool:
        """:meth:`visible` for a resource already read (mostly without another query)."""

    async def check_write(self, reader: Reader, before: Stored | None, after: Json | None) -> None:
        """Raise (404 for an invisible ``before``, 403 for an ``after`` outside the caller's
        units) unless the caller may turn ``before`` into ``after`` (None: create / delete)."""

    async def release(self, reader: Reader, found: list[Stored]) -> list[Stored]:
        """What of ``found`` may leave now (e.g. only while a consent covers it)."""

    @property
    def filters_after_search(self) -> bool:
        """True when :meth:`release` may drop matches, so pages are cut after it."""

    def provenance(self, stored: Stored, activity: str) -> Json | None:
        """The Provenance to store with a write (who, for which unit, from which system)."""

    def audit_unit(self) -> str | None:
        """Whose access log the caller reads: a unit's (its HSA-id), or None for all."""


class OpenAccess:
    """Everything allowed, nothing recorded."""

    async def allow(self, resource_type: str, interaction: str) -> None:
        return None

    async def restrict(self, reader: Reader, resource_type: str, search: Search) -> Search:
        return search

    async def visible(self, reader: Reader, resource_type: str, resource_id: str) -> bool:
        return True

    async def sees(self, reader: Reader, stored: Stored) -> bool:
        return True

    async def check_write(self, reader: Reader, before: Stored | None, after: Json | None) -> None:
        return None

    async def release(self, reader: Reader, found: list[Stored]) -> list[Stored]:
        return found

    @property
    def filters_after_search(self) -> bool:
        return False

    def provenance(self, stored: Stored, activity: str) -> Json | None:
        return None

    def audit_unit(self) -> str | None:
        return None


OPEN: Access = OpenAccess()
