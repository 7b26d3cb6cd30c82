"""The access log as one caller may read it: a care unit its own accesses, a platform all.

Implements :class:`reko_fhir.rest.access.AccessLogReader` on the store's append-only tables
(:mod:`reko_fhir.store.audit`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from reko_fhir.store import SqlRepository, audit

Json = dict[str, Any]


class UnitAccessLog:
    def __init__(self, store: SqlRepository, unit: str | None) -> None:
        self.store = store
        self.unit = unit  # None: every unit's accesses

    async def read(self, event_id: str) -> Json | None:
        async with self.store.transaction(writer=False) as conn:
            return await audit.read(conn, event_id, unit=self.unit)

    async def search(
        self, *, patient: str | None, date_params: Sequence[str], count: int, offset: int
    ) -> tuple[list[Json], int]:
        async with self.store.transaction(writer=False) as conn:
            found = await audit.search(
                conn,
                patient=patient,
                date_params=date_params,
                unit=self.unit,
                count=count,
                offset=offset,
            )
            total = await audit.total(
                conn, patient=patient, date_params=date_params, unit=self.unit
            )
        return found, total
