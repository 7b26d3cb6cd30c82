"""The KVÅ statistics of the store (sqlite, postgresql, memory) equal what searches of the same
units and months count, over a seeded year at two care units; partitions hold."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from reko_fhir.outcomes import OperationOutcomeError
from reko_fhir.security.guard import Caller, GuardedRepository
from reko_fhir.security.scopes import Scopes
from reko_fhir.security.tokens import Principal
from reko_fhir.store import MATCH_LIMIT, Partitions, Search
from reko_fhir.store.memory import MemoryRepository
from reko_fhir.store.repository import months
from reko_fhir.store.sql import SqlRepository
from tests.kva_activity import Json, as_dict, fill_year, searched_counts

UNITS = ["SE2321000016-15CQ", "SE2321000016-7BN2"]
YEAR = months("2026-01", "2026-12")

Store = SqlRepository | MemoryRepository


class StoreSearches:
    def __init__(self, store: Store) -> None:
        self.store = store

    def _search(self, params: list[tuple[str, str]]) -> Search:
        sort = tuple(v for k, v in params if k == "_sort")
        asked = tuple(p for p in params if p[0] != "_sort")
        return Search(asked, MATCH_LIMIT, sort=sort)

    async def total(self, kind: str, params: list[tuple[str, str]]) -> int:
        return await self.store.total(kind, self._search(params))

    async def matches(self, kind: str, params: list[tuple[str, str]]) -> list[Json]:
        return [s.resource for s in await self.store.search(kind, self._search(params))]


async def test_the_statistics_equal_search_counts_for_every_group_unit_and_month(
    store: Store,
) -> None:
    await fill_year(lambda u: store.scoped(Partitions.of_unit(u)), UNITS, seed=14)
    expected = await searched_counts(
        lambda u: StoreSearches(store.scoped(Partitions.of_unit(u))), UNITS, YEAR
    )
    assert {k[2] for k in expected} >= {
        "gc001", "dv077", "aw026", "patienter", "nya-insatser", "inom-90-dagar", "meddelanden-fk"
    }  # fmt: skip
    assert {k[0] for k in expected} == set(UNITS)
    assert as_dict(await store.kva_counts(YEAR)) == expected
    # A unit's view counts its own partition only; narrowing to a unit gives the same rows.
    own = store.scoped(Partitions.of_unit(UNITS[1]))
    mine = {k: v for k, v in expected.items() if k[0] == UNITS[1]}
    assert as_dict(await own.kva_counts(YEAR)) == mine
    assert as_dict(await store.kva_counts(YEAR, frozenset({UNITS[1]}))) == mine
    assert as_dict(await own.kva_counts(YEAR, frozenset({UNITS[0]}))) == {}
    # One period over the whole year: Periods over a month's edge count once, not twice.
    year = replace(YEAR[0], label="2026", end=YEAR[-1].end)
    whole = as_dict(await store.kva_counts([year]))
    assert whole == await searched_counts(
        lambda u: StoreSearches(store.scoped(Partitions.of_unit(u))), UNITS, [year]
    )


async def test_a_deleted_or_other_status_procedure_is_not_counted(store: Store) -> None:
    unit = store.scoped(Partitions.of_unit(UNITS[0]))
    patient = await unit.create({"resourceType": "Patient"})
    occasion: dict[str, Any] = {
        "resourceType": "Procedure",
        "status": "completed",
        "code": {"coding": [{"system": "urn:oid:1.2.752.116.1.3.2.1.4", "code": "GC001"}]},
        "subject": {"reference": f"Patient/{patient.id}"},
        "performedDateTime": "2026-03-31T23:30:00Z",
    }
    kept = await unit.create(occasion)
    gone = await unit.create(occasion)
    await unit.delete("Procedure", gone.id)
    await unit.create({**occasion, "status": "in-progress"})
    counted = as_dict(await unit.kva_counts(months("2026-03", "2026-04")))
    assert counted == {
        (UNITS[0], "2026-03", "gc001", None): 1,
        (UNITS[0], "2026-03", "patienter", None): 1,
    }
    await unit.update({**kept.resource, "performedDateTime": "2026-04-01T00:30:00+02:00"})
    assert as_dict(await unit.kva_counts(months("2026-03", "2026-04"))) == counted


async def test_an_episode_in_time_needs_its_first_occasion_by_day_90(store: Store) -> None:
    unit = store.scoped(Partitions.of_unit(UNITS[0]))
    counted = []
    for first_day in ("2026-04-01", "2026-04-02"):  # day 90 and day 91 after 2026-01-01
        patient = await unit.create({"resourceType": "Patient"})
        ref = {"reference": f"Patient/{patient.id}"}
        await unit.create(
            {
                "resourceType": "EpisodeOfCare",
                "status": "active",
                "patient": ref,
                "period": {"start": "2026-03-20"},
                "extension": [
                    {
                        "url": "http://reko-fhir.se/fhir/StructureDefinition/sick-leave-period",
                        "extension": [{"url": "start", "valueDate": "2026-01-01"}],
                    }
                ],
            }
        )
        await unit.create(
            {
                "resourceType": "Procedure",
                "status": "completed",
                "code": {"coding": [{"system": "urn:oid:1.2.752.116.1.3.2.1.4", "code": "GC001"}]},
                "subject": ref,
                "performedDateTime": f"{first_day}T12:00:00Z",
            }
        )
        counted.append(as_dict(await unit.kva_counts(months("2026-03", "2026-03"))))
    assert counted[0][(UNITS[0], "2026-03", "inom-90-dagar", None)] == 1
    assert counted[1][(UNITS[0], "2026-03", "inom-90-dagar", None)] == 1  # the second is late
    assert counted[1][(UNITS[0], "2026-03", "nya-insatser", None)] == 2


async def test_the_guard_keeps_a_unit_to_its_own_statistics() -> None:
    store = MemoryRepository()
    own = Partitions.of_unit(UNITS[0])
    unit = Principal("someone", Scopes.parse("user/*.rs"), care_unit=UNITS[0])
    guarded = GuardedRepository(store.scoped(own), Caller(unit, None, own))
    assert await guarded.kva_counts(YEAR, frozenset({UNITS[0]})) == []
    with pytest.raises(OperationOutcomeError) as refused:
        await guarded.kva_counts(YEAR, frozenset({UNITS[1]}))
    assert refused.value.status == 403
    external = Principal(
        "fk", Scopes.parse("user/*.rs"), external_actor="urn:oid:2.5.4.97|2021005521"
    )
    outside = GuardedRepository(store, Caller(external, None, Partitions(None, None)))
    with pytest.raises(OperationOutcomeError):
        await outside.kva_counts(YEAR)
