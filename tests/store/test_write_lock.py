"""What a write locks (issue 15): an unchanged resend takes no row lock, a change does."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from reko_fhir.outcomes import OperationOutcomeError
from reko_fhir.store import FhirRepository, FhirSession, Search, SqlRepository, Stored

ORG = "urn:oid:1.2.752.29.4.19"


def organization(name: str) -> dict[str, Any]:
    return {
        "resourceType": "Organization",
        "identifier": [{"system": ORG, "value": "SE2321000016-VC01"}],
        "name": name,
    }


async def test_an_unchanged_update_passes_a_row_another_unit_holds_locked(
    repo: SqlRepository,
) -> None:
    """PostgreSQL: while one unit holds an Organization's row locked (it is changing it), an
    unchanged resend of the committed version answers at once, as the version it found; a
    changing update of the same row waits for the lock. (SQLite has one writer at a time.)"""
    if repo.is_sqlite:
        pytest.skip("SQLite's writers queue for the database lock, not for a row")
    stored = await repo.create(organization("Vårdcentralen"))
    same = {**stored.resource}
    holding, release = asyncio.Event(), asyncio.Event()

    async def change(unit: FhirSession) -> None:
        await unit.update({**same, "name": "Vårdcentralen Norr"})
        holding.set()
        await release.wait()

    holder = asyncio.create_task(repo.in_unit(change))
    await holding.wait()
    resend = asyncio.create_task(repo.update(same))
    changing = asyncio.create_task(repo.update({**same, "name": "Vårdcentralen Syd"}))
    done, _ = await asyncio.wait({resend, changing}, timeout=10)
    assert done == {resend}  # the no-op did not wait; the change does
    answer = resend.result()
    assert answer.unchanged
    assert answer.version == 1
    release.set()
    await holder
    assert (await changing).version == 3  # decided again on the version the lock held
    assert (await repo.read("Organization", stored.id)).resource["name"] == "Vårdcentralen Syd"


async def test_a_changed_update_decides_on_the_locked_version(repo: SqlRepository) -> None:
    """An update read unlocked as a change is decided again on the locked row: If-Match
    against a version another unit wrote meanwhile is 412, nothing written."""
    stored = await repo.create(organization("A"))
    await repo.update({**stored.resource, "name": "B"})
    with pytest.raises(OperationOutcomeError, match="stale") as refused:
        await repo.update({**stored.resource, "name": "C"}, if_match=1)
    assert refused.value.status == 412
    assert await repo.count("Organization") == 2
    found = await repo.search("Organization", Search((("identifier", f"{ORG}|SE2321000016-VC01"),)))
    assert [s.resource["name"] for s in found] == ["B"]


async def test_a_condition_that_matched_nothing_matches_what_the_unit_wrote_since(
    store: FhirRepository,
) -> None:
    """A transaction resolves every condition before it writes; a create under a condition
    that then matched nothing is not matched again, unless the unit has written that type since
    (a resource written with both identifiers is found by the second condition)."""
    first = Search((("identifier", f"{ORG}|A"),))
    second = Search((("identifier", f"{ORG}|B"),))
    both = {
        "resourceType": "Organization",
        "identifier": [{"system": ORG, "value": "A"}, {"system": ORG, "value": "B"}],
    }

    async def work(unit: FhirSession) -> tuple[Stored, Stored]:
        assert await unit.one_match("Organization", first) is None
        assert await unit.one_match("Organization", second) is None
        created = await unit.create(both, condition=first)
        again = await unit.create({**both, "name": "again"}, condition=second)
        return created, again

    created, again = await store.in_unit(work)
    assert created.created
    assert not again.created
    assert again.id == created.id
    found = await store.search("Organization", Search((("identifier", f"{ORG}|B"),)))
    assert [s.id for s in found] == [created.id]
