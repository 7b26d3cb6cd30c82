"""``CarePlan?activity-date`` and ``activity-code`` in every store (SQLite, PostgreSQL, memory):
R4's parameters on ``CarePlan.activity.detail.scheduled[x]`` and ``.code``
(https://hl7.org/fhir/R4/careplan.html#search), with the date prefixes of
https://hl7.org/fhir/R4/search.html#date."""

from __future__ import annotations

from typing import Any

import pytest

from reko_fhir.outcomes import OperationOutcomeError
from reko_fhir.store import FhirRepository, Search

KVA = "urn:oid:1.2.752.116.1.3.2.1.4"


def detail(code: str, **scheduled: Any) -> dict[str, Any]:
    return {
        "detail": {
            "code": {"coding": [{"system": KVA, "code": code}]},
            "status": "scheduled",
            **scheduled,
        }
    }


def careplan(*activities: dict[str, Any]) -> dict[str, Any]:
    return {
        "resourceType": "CarePlan",
        "status": "active",
        "intent": "plan",
        "subject": {"reference": "Patient/1"},
        "period": {"start": "2026-01-01"},
        "activity": list(activities),
    }


PLANS = {
    # A follow-up from 1 March (a Period without end) and a GC001 on 10 February.
    "period": careplan(
        detail("AW026", scheduledPeriod={"start": "2026-03-01"}),
        detail("GC001", scheduledPeriod={"start": "2026-02-10", "end": "2026-02-10"}),
    ),
    # A Timing's event: one moment on 15 May (an offset: 08:00 UTC).
    "event": careplan(detail("AW026", scheduledTiming={"event": ["2026-05-15T10:00:00+02:00"]})),
    # A Timing's repeat.boundsPeriod: all of April.
    "bounds": careplan(
        detail(
            "AW026",
            scheduledTiming={
                "repeat": {"boundsPeriod": {"start": "2026-04-01", "end": "2026-04-30"}}
            },
        )
    ),
    # A string is no date: found by its code, never by a date.
    "string": careplan(detail("AW026", scheduledString="när patienten hör av sig")),
}


@pytest.fixture
async def plans(store: FhirRepository) -> dict[str, str]:
    return {name: (await store.create(plan)).id for name, plan in PLANS.items()}


async def found(store: FhirRepository, query: str, plans: dict[str, str]) -> set[str]:
    names = {v: k for k, v in plans.items()}
    return {names[s.id] for s in await store.search("CarePlan", Search.parse(query))}


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("activity-date=lt2026-03-01", {"period"}),  # the GC001 on 10 February
        ("activity-date=le2026-03-01", {"period"}),
        ("activity-date=lt2026-02-10", set()),  # nothing begins before 10 February
        ("activity-date=le2026-04-01", {"period", "bounds"}),
        ("activity-date=2026-05-15", {"event"}),  # eq: within that day
        ("activity-date=eq2026-05", {"event"}),
        ("activity-date=ge2026-04-15", {"period", "event", "bounds"}),
        ("activity-date=gt2026-05-15", {"period"}),  # only the open follow-up reaches past it
        ("activity-date=ge2026-05-16", {"period"}),
        ("activity-date=sa2026-04-30", {"period", "event"}),
        ("activity-date=eb2026-03-01", {"period"}),
        ("activity-date=ne2026-05-15", {"period", "bounds"}),
        ("activity-date=2026-05-15T08:00:00Z", {"event"}),  # the offset is honoured
        ("activity-date=2026-05-15T10:00:00Z", set()),
        ("activity-code=AW026", {"period", "event", "bounds", "string"}),
        (f"activity-code={KVA}|GC001", {"period"}),
        ("activity-code=urn:other|GC001", set()),
        ("activity-code=AW026&activity-date=lt2026-04-02", {"period", "bounds"}),
        ("activity-code=GC001&activity-date=ge2026-03-01", {"period"}),  # R4: each on any activity
    ],
)
async def test_activity_date_and_code(
    store: FhirRepository, plans: dict[str, str], query: str, expected: set[str]
) -> None:
    assert await found(store, query, plans) == expected


async def test_an_update_reindexes_the_activities(
    store: FhirRepository, plans: dict[str, str]
) -> None:
    moved = careplan(detail("GC001", scheduledPeriod={"start": "2026-09-01", "end": "2026-09-01"}))
    await store.update({**moved, "id": plans["event"]})
    assert await found(store, "activity-date=2026-05-15", plans) == set()
    assert await found(store, "activity-date=2026-09-01", plans) == {"event"}
    assert "event" not in await found(store, "activity-code=AW026", plans)


async def test_sort_by_activity_date_puts_plans_without_a_date_last(
    store: FhirRepository, plans: dict[str, str]
) -> None:
    ascending = await store.search("CarePlan", Search(sort=("activity-date",)))
    assert [s.id for s in ascending] == [plans[n] for n in ("period", "bounds", "event", "string")]


async def test_a_malformed_activity_date_is_400(
    store: FhirRepository, plans: dict[str, str]
) -> None:
    with pytest.raises(OperationOutcomeError) as failure:
        await store.search("CarePlan", Search.parse("activity-date=lt2026-13-45"))
    assert failure.value.status == 400
