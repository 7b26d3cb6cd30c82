"""The import: one Task per candidate, idempotent, closing by itself, rejections kept."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from reko_fhir.mapping import codings as c
from reko_fhir.mapping import worklist as wl
from reko_fhir.outcomes import OperationOutcomeError
from reko_fhir.rest.messages import FhirRequest
from reko_fhir.security.scopes import Scopes
from reko_fhir.store import Partitions, Search
from reko_fhir.store.memory import MemoryRepository
from reko_fhir.store.sql import SqlRepository
from reko_fhir.worklist import WorklistSettings, import_sick_leaves
from reko_fhir.worklist.unit import AsUnit, worklist_router
from tests.worklist.certificates import (
    OTHER_UNIT,
    TODAY,
    UNIT,
    certificate,
    days_ago,
    episode,
    patient,
)

Store = SqlRepository | MemoryRepository
P1, P2, P3, P4 = patient(1), patient(2), patient(3), patient(4)
FEED = [
    certificate("in-window", P1, days_ago(20), TODAY + timedelta(days=30), degree=50),
    certificate("out-of-window", P2, days_ago(120), TODAY + timedelta(days=10)),
    certificate("ended", P3, days_ago(40), days_ago(3)),
    certificate("elsewhere", P4, days_ago(10), TODAY + timedelta(days=5), unit=OTHER_UNIT),
]


async def tasks(store: Store, unit: str = UNIT.value) -> list[dict[str, Any]]:
    found = await store.scoped(Partitions.of_unit(unit)).search("Task", Search((), 100))
    return sorted((s.resource for s in found), key=lambda t: t["input"][0]["valueDate"])


async def test_only_the_candidate_gets_a_task_and_a_second_import_changes_nothing(
    store: Store,
) -> None:
    router = worklist_router(store)
    first = await import_sick_leaves(store, UNIT, FEED, today=TODAY, router=router)
    assert (first.created, first.updated, first.unchanged, first.closed) == (1, 0, 0, {})
    assert first.other_units == 1
    (task,) = await tasks(store)
    assert task["status"] == "requested"
    assert task["meta"]["profile"] == [c.PROFILE_WORKLIST_TASK]
    assert [wl.task_input(task, code) for code in (wl.START, wl.DEGREE, wl.DAYS)] == [
        days_ago(20).isoformat(),
        50,
        51,
    ]
    # The unit's Organization and the Patient were created in the unit's partition.
    unit_view = store.scoped(Partitions.of_unit(UNIT.value))
    (patient_row,) = await unit_view.search("Patient", Search((), 10))
    assert task["for"] == {"reference": f"Patient/{patient_row.id}"}
    assert patient_row.partition == UNIT.value
    (org,) = await unit_view.search("Organization", Search((), 10))
    assert task["owner"] == {"reference": f"Organization/{org.id}"}
    # Written through the guard: a Provenance per change, acting for the unit.
    provenances = await unit_view.search("Provenance", Search((), 100))
    assert len(provenances) == 3
    assert {p.resource["agent"][0]["onBehalfOf"]["identifier"]["value"] for p in provenances} == {
        UNIT.value
    }

    again = await import_sick_leaves(store, UNIT, FEED, today=TODAY, router=router)
    assert (again.created, again.updated, again.unchanged, again.closed) == (0, 0, 1, {})
    assert again.task_ids == first.task_ids
    (same,) = await tasks(store)
    assert same["meta"]["versionId"] == "1"
    assert len(await unit_view.search("Provenance", Search((), 100))) == 3


async def test_the_task_closes_when_the_sick_leave_ends_or_leaves_the_window(store: Store) -> None:
    router = worklist_router(store)
    await import_sick_leaves(store, UNIT, FEED, today=TODAY, router=router)
    # 31 days later the certificate has ended: completed.
    later = await import_sick_leaves(
        store, UNIT, FEED, today=TODAY + timedelta(days=31), router=router
    )
    assert later.closed == {"completed": 1}
    assert [t["status"] for t in await tasks(store)] == ["completed"]


async def test_leaving_the_window_cancels_and_leaving_the_feed_completes(store: Store) -> None:
    router = worklist_router(store)
    long = certificate("long", P1, days_ago(20), TODAY + timedelta(days=200))
    await import_sick_leaves(store, UNIT, [long], today=TODAY, router=router)
    settings = WorklistSettings(focus_days=30)
    closed = await import_sick_leaves(
        store, UNIT, [long], today=TODAY + timedelta(days=10), settings=settings, router=router
    )
    assert closed.closed == {"cancelled": 1}
    short = certificate("short", P2, days_ago(2), TODAY + timedelta(days=200))
    await import_sick_leaves(store, UNIT, [short], today=TODAY, router=router)
    gone = await import_sick_leaves(store, UNIT, [], today=TODAY, router=router)
    assert gone.closed == {"completed": 1}
    assert sorted(t["status"] for t in await tasks(store)) == ["cancelled", "completed"]


async def test_a_rejected_candidate_stays_rejected(store: Store) -> None:
    router = worklist_router(store)
    await import_sick_leaves(store, UNIT, FEED, today=TODAY, router=router)
    (task,) = await tasks(store)
    rejected = {k: v for k, v in task.items() if k != "meta"} | {
        "status": "rejected",
        "statusReason": c.concept(c.CS_EXCLUSION, "hel-sjukersattning"),
    }
    await AsUnit(store, UNIT, router).put_task(task["identifier"][0]["value"], rejected)
    again = await import_sick_leaves(store, UNIT, FEED, today=TODAY, router=router)
    assert (again.created, again.unchanged) == (0, 1)
    (kept,) = await tasks(store)
    assert kept["status"] == "rejected"
    assert kept["statusReason"]["coding"][0]["code"] == "hel-sjukersattning"
    assert kept["meta"]["versionId"] == "2"


async def test_a_rejection_without_a_reason_is_refused(store: Store) -> None:
    router = worklist_router(store)
    await import_sick_leaves(store, UNIT, FEED, today=TODAY, router=router)
    (task,) = await tasks(store)
    bare = {k: v for k, v in task.items() if k != "meta"} | {"status": "rejected"}
    with pytest.raises(OperationOutcomeError) as refused:
        await AsUnit(store, UNIT, router).put_task(task["identifier"][0]["value"], bare)
    assert "reko-task-1" in str(refused.value.issues)


async def test_a_case_started_at_the_unit_accepts_the_task_at_once_and_at_import(
    store: Store,
) -> None:
    router = worklist_router(store)
    await import_sick_leaves(store, UNIT, FEED, today=TODAY, router=router)
    (task,) = await tasks(store)
    writer = AsUnit(store, UNIT, router)
    # A coordinator of the unit (the import's own scopes only read cases).
    writer.principal = replace(writer.principal, scopes=Scopes.parse("user/*.cruds"))
    answer = await writer.handle(
        FhirRequest("POST", "/EpisodeOfCare"),
        episode(task["for"]["reference"], task["owner"]["reference"]),
        action="C",
        interaction="create",
    )
    assert answer.status == 201
    (accepted,) = await tasks(store)
    assert accepted["status"] == "accepted"
    again = await import_sick_leaves(store, UNIT, FEED, today=TODAY, router=router)
    assert (again.created, again.unchanged) == (0, 1)
    # A new sick leave of the patient in a case is no candidate either.
    fresh = certificate("new", P1, TODAY + timedelta(days=40), TODAY + timedelta(days=60))
    later = await import_sick_leaves(store, UNIT, [*FEED, fresh], today=TODAY, router=router)
    assert later.created == 0
    assert len(await tasks(store)) == 1


async def test_another_unit_sees_none_of_it(store: Store) -> None:
    router = worklist_router(store)
    await import_sick_leaves(store, UNIT, FEED, today=TODAY, router=router)
    elsewhere = await import_sick_leaves(store, OTHER_UNIT, FEED, today=TODAY, router=router)
    assert elsewhere.created == 1  # P4's, issued there
    assert [t["for"] for t in await tasks(store, OTHER_UNIT.value)] != [
        t["for"] for t in await tasks(store)
    ]
    assert len(await tasks(store)) == 1
    assert len(await tasks(store, OTHER_UNIT.value)) == 1


async def test_an_import_writes_only_over_the_version_it_read(store: Store) -> None:
    """A Task changed between the import's read and its write (a case started, a coordinator's
    rejection) is left as it is: the update names the version read (If-Match)."""
    router = worklist_router(store)
    await import_sick_leaves(store, UNIT, FEED, today=TODAY, router=router)
    (task,) = await tasks(store)
    writer = AsUnit(store, UNIT, router)
    value = task["identifier"][0]["value"]
    rejected = {k: v for k, v in task.items() if k != "meta"} | {
        "status": "rejected",
        "statusReason": c.concept(c.CS_EXCLUSION, "annan"),
    }
    assert await writer.put_task(value, rejected) is not None  # now version 2
    stale = {k: v for k, v in task.items() if k != "meta"} | {"status": "completed"}
    assert await writer.put_task(value, stale, version="1", task_id=task["id"]) is None
    (kept,) = await tasks(store)
    assert (kept["status"], kept["meta"]["versionId"]) == ("rejected", "2")


async def test_a_case_in_a_transaction_bundle_accepts_the_task_in_that_transaction(
    store: Store,
) -> None:
    router = worklist_router(store)
    await import_sick_leaves(store, UNIT, FEED, today=TODAY, router=router)
    (task,) = await tasks(store)
    writer = AsUnit(store, UNIT, router)
    writer.principal = replace(writer.principal, scopes=Scopes.parse("user/*.cruds"))
    case = episode(task["for"]["reference"], task["owner"]["reference"])
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [{"resource": case, "request": {"method": "POST", "url": "EpisodeOfCare"}}],
    }
    answer = await writer.handle(
        FhirRequest("POST", "/"), bundle, action="C", interaction="transaction"
    )
    assert answer.status == 200, answer.resource
    (accepted,) = await tasks(store)
    assert accepted["status"] == "accepted"


async def test_a_case_that_is_over_accepts_nothing(store: Store) -> None:
    router = worklist_router(store)
    await import_sick_leaves(store, UNIT, FEED, today=TODAY, router=router)
    (task,) = await tasks(store)
    writer = AsUnit(store, UNIT, router)
    writer.principal = replace(writer.principal, scopes=Scopes.parse("user/*.cruds"))
    finished = episode(task["for"]["reference"], task["owner"]["reference"], status="finished")
    finished["extension"][0]["valueCoding"]["code"] = "avslutad"
    finished["period"]["end"] = TODAY.isoformat()
    answer = await writer.handle(
        FhirRequest("POST", "/EpisodeOfCare"), finished, action="C", interaction="create"
    )
    assert answer.status == 201
    (still,) = await tasks(store)
    assert still["status"] == "requested"
