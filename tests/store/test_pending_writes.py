"""A unit's held-back inserts (:mod:`reko_fhir.store.pending`): what the unit reads, and what
the database refuses, is as if every insert had run at once."""

from __future__ import annotations

import pytest
from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError

from reko_fhir.outcomes import OperationOutcomeError
from reko_fhir.store import Search, SqlRepository
from reko_fhir.store.schema import conditional_create
from tests.store.test_repository import patient, procedure


async def test_a_unit_reads_what_it_wrote_before_the_flush(repo: SqlRepository) -> None:
    """Create, find by search, match, update, read and delete one resource in one unit."""
    async with repo.unit() as unit:
        first = await unit.create(patient())
        made = await unit.create(procedure(f"Patient/{first.id}"))
        by_identifier = Search((("identifier", "urn:oid:1.2.752.9999.1|J-1"),))
        assert [s.id for s in await unit.search("Procedure", by_identifier)] == [made.id]
        assert (await unit.one_match("Procedure", by_identifier)) is not None
        found = await unit.about_patient(f"Patient/{first.id}", ("Procedure",))
        assert [s.id for s in found] == [made.id]
        changed = await unit.update({**made.resource, "status": "not-done"})
        assert changed.version == 2
        assert (await unit.read("Procedure", made.id)).resource["status"] == "not-done"
        # the update re-indexed: the old status is gone from the index, the new one is there
        done = Search((("status", "completed"),))
        assert await unit.search("Procedure", done) == []
        assert await unit.delete("Procedure", made.id) == 3
    assert await repo.count("Procedure") == 3
    assert await repo.read_current("Patient", [first.id])


async def test_a_lost_conditional_create_race_still_fails_inside_the_unit(
    repo: SqlRepository,
) -> None:
    """The conditional_create key, taken by a winner whose resource the unit does not see
    (here: a bare key row), raises IntegrityError at the flush — inside the unit, which rolls
    back whole — and in_unit's retry then answers 409, as before the inserts were held back."""
    condition = Search.parse("identifier=urn:oid:1.2.752.9999.1|J-1")
    async with repo.transaction() as conn:
        key = {"partition": "", "type": "Procedure", "query": condition.canonical(), "id": "x"}
        await conn.execute(insert(conditional_create).values(**key))
    before = await repo.row_counts()

    async def patient_and_procedure() -> None:
        async with repo.unit() as unit:
            await unit.create(patient())
            await unit.create(procedure("Patient/1"), condition=condition)

    with pytest.raises(IntegrityError):
        await patient_and_procedure()
    assert await repo.row_counts() == before
    with pytest.raises(OperationOutcomeError) as refused:
        await repo.create(procedure("Patient/1"), if_none_exist=condition)
    assert refused.value.status == 409
    assert await repo.row_counts() == before
