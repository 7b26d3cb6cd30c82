"""Searching the worklist's Tasks: owner, patient, status, code, and the sick leave's start
(date) and length (number) to filter and sort on — on every store, and through the router."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from reko_fhir.mapping import worklist as wl
from reko_fhir.outcomes import OperationOutcomeError
from reko_fhir.rest.messages import FhirRequest
from reko_fhir.store import Partitions, Search
from reko_fhir.store.memory import MemoryRepository
from reko_fhir.store.sql import SqlRepository
from reko_fhir.worklist import import_sick_leaves
from reko_fhir.worklist.unit import AsUnit, worklist_router
from tests.worklist.certificates import TODAY, UNIT, certificate, days_ago, patient

Store = SqlRepository | MemoryRepository
# (days ago it started, days it lasts): starts and lengths in different orders.
SHAPES = [(30, 40), (10, 90), (50, 60), (20, 25)]


async def worklist(store: Store) -> AsUnit:
    router = worklist_router(store)
    feed = [
        certificate(f"c{n}", patient(n), days_ago(ago), days_ago(ago) + timedelta(days=length - 1))
        for n, (ago, length) in enumerate(SHAPES)
    ]
    changes = await import_sick_leaves(store, UNIT, feed, today=TODAY, router=router)
    assert changes.created == len(SHAPES)
    return AsUnit(store, UNIT, router)


def lengths(found: list[Any]) -> list[int]:
    return [wl.task_input(getattr(t, "resource", t), wl.DAYS) for t in found]


async def test_the_store_sorts_and_filters_on_start_and_length(store: Store) -> None:
    await worklist(store)
    view = store.scoped(Partitions.of_unit(UNIT.value))
    by_start = await view.search("Task", Search((), 10, sort=("sick-leave-start",)))
    assert lengths(by_start) == [60, 40, 25, 90]  # started 50, 30, 20, 10 days ago
    by_length = await view.search("Task", Search((), 10, sort=("-sick-leave-length",)))
    assert lengths(by_length) == [90, 60, 40, 25]
    longer = await view.search("Task", Search((("sick-leave-length", "gt40"),), 10))
    assert sorted(lengths(longer)) == [60, 90]
    exact = await view.search("Task", Search((("sick-leave-length", "40"),), 10))
    assert lengths(exact) == [40]
    at_most = await view.search("Task", Search((("sick-leave-length", "le40"),), 10))
    assert sorted(lengths(at_most)) == [25, 40]
    since = (days_ago(30)).isoformat()
    recent = await view.search("Task", Search((("sick-leave-start", f"ge{since}"),), 10))
    assert sorted(lengths(recent)) == [25, 40, 90]


async def test_a_number_that_is_none_is_refused(store: Store) -> None:
    view = store.scoped(Partitions.of_unit(UNIT.value))
    with pytest.raises(OperationOutcomeError, match="whole number"):
        await view.search("Task", Search((("sick-leave-length", "ap4.5"),), 10))


async def test_the_worklist_query_through_the_router(store: Store) -> None:
    unit = await worklist(store)
    owner = (await unit.tasks(await unit.ensure(*_org())))[0]["owner"]["reference"]
    query = (
        ("owner", owner),
        ("status", "requested"),
        ("code", wl.TASK_TOKEN),
    )
    answer = await unit.handle(
        FhirRequest("GET", "/Task", (*query, ("_sort", "-sick-leave-length")))
    )
    found = [e["resource"] for e in answer.resource["entry"]]  # type: ignore[index]
    assert lengths(found) == [90, 60, 40, 25]
    answer = await unit.handle(FhirRequest("GET", "/Task", (*query, ("_sort", "sick-leave-start"))))
    assert lengths([e["resource"] for e in answer.resource["entry"]]) == [60, 40, 25, 90]  # type: ignore[index]
    patient_ref = found[0]["for"]["reference"]
    answer = await unit.handle(FhirRequest("GET", "/Task", (("patient", patient_ref),)))
    assert [e["resource"]["id"] for e in answer.resource["entry"]] == [found[0]["id"]]  # type: ignore[index]
    answer = await unit.handle(FhirRequest("GET", "/Task", (("subject", patient_ref),)))
    assert answer.resource["total"] == 1  # type: ignore[index]
    with pytest.raises(OperationOutcomeError, match="400"):
        await unit.handle(FhirRequest("GET", "/Task", (("sick-leave-length", "many"),)))


def _org() -> tuple[dict[str, Any], tuple[str, str]]:
    from reko_fhir.mapping import codings as c  # noqa: PLC0415

    return wl.organization_resource(UNIT), (c.HSA, UNIT.value)
