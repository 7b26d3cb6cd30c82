"""The two things the router asks of its caller besides the store.

What a caller may *see* is not asked here: the router is handed a repository that only holds
what the caller may see (:class:`reko_fhir.security.guard.GuardedRepository`). The router asks
only whether the caller's scopes allow an interaction on a type (:class:`Permissions`), and
reads the access log through the part of it the caller may read (:class:`AccessLogReader`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

Json = dict[str, Any]


class Permissions(Protocol):
    def allow(self, resource_type: str, interaction: str) -> None:
        """Raise an OperationOutcomeError (403) when the caller may not do ``interaction``."""


class AllowAll:
    """Every interaction allowed: for callers inside the process, never for HTTP requests."""

    def allow(self, resource_type: str, interaction: str) -> None:
        return None


ALLOW_ALL: Permissions = AllowAll()


class AccessLogReader(Protocol):
    """The access log as one caller may read it (a unit its own accesses, a platform all)."""

    async def read(self, event_id: str) -> Json | None: ...

    async def search(
        self, *, patient: str | None, date_params: Sequence[str], count: int, offset: int
    ) -> tuple[list[Json], int]:
        """One page of events, newest first, and how many match in all."""
