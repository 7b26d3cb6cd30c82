"""A transaction's conditions matched at once (``one_match_each``), on every implementation:
the same answers, errors and order as :meth:`one_match` of each, one after the other; and the
unit's shortcuts for what it resolved (``still_unmatched``, ``unchanged``)."""

from __future__ import annotations

from typing import Any

import pytest

from reko_fhir.outcomes import OperationOutcomeError
from reko_fhir.store import FhirRepository, FhirSession, Search, SqlRepository, Stored
from tests.store.test_repository import PNR, patient, procedure

J1 = "identifier=urn:oid:1.2.752.9999.1|J-1"


def _answers(found: list[Stored | None]) -> list[tuple[str, int, dict[str, Any]] | None]:
    return [(s.id, s.version, s.resource) if s else None for s in found]


async def test_each_condition_answers_as_it_does_alone(store: FhirRepository) -> None:
    first = await store.create(patient("191212121212"))
    await store.create(patient("199001012380"))
    await store.create({**patient("191212121212"), "identifier": [{"system": "x", "value": "1"}]})
    await store.create(procedure(f"Patient/{first.id}"))
    conditions = [
        ("Patient", Search.parse(f"identifier={PNR}|191212121212")),  # one, system and code
        ("Patient", Search.parse("identifier=191212121212")),  # one, code alone
        ("Patient", Search.parse("identifier=urn:oid:9|191212121212")),  # another system
        ("Procedure", Search.parse(f"identifier={PNR}|191212121212")),  # another type
        ("Procedure", Search.parse(J1)),  # one
        ("Patient", Search.parse("identifier=x|")),  # a system alone: looked for alone
        ("Patient", Search.parse(f"_id={first.id}")),  # not a token
        ("Procedure", Search.parse(f"patient=Patient/{first.id}")),  # a reference
        ("Patient", Search.parse("identifier=nobody")),  # none
    ]

    async def both(unit: FhirSession) -> tuple[list[Stored | None], list[Stored | None]]:
        each = await unit.one_match_each(conditions)
        alone = [await unit.one_match(t, c) for t, c in conditions]
        return each, alone

    each, alone = await store.in_unit(both)
    assert _answers(each) == _answers(alone)
    assert [s is not None for s in each] == [1, 1, 0, 0, 1, 1, 1, 1, 0]


async def test_the_first_failing_condition_fails_all_with_its_own_error(
    store: FhirRepository,
) -> None:
    await store.create(procedure("Patient/1"))
    await store.create(procedure("Patient/2"))
    several = ("Procedure", Search.parse(J1))
    unknown = ("Procedure", Search.parse("shoeSize=44"))
    with pytest.raises(OperationOutcomeError) as alone:
        await store.in_unit(lambda unit: unit.one_match(*several))
    with pytest.raises(OperationOutcomeError) as each:
        await store.in_unit(lambda unit: unit.one_match_each([("Patient", Search()), several]))
    assert each.value.status == alone.value.status == 412
    assert each.value.issues == alone.value.issues  # "2 Procedure resources match …"
    with pytest.raises(OperationOutcomeError) as first:
        await store.in_unit(lambda unit: unit.one_match_each([unknown, several]))
    assert first.value.status == 400


async def test_many_rows_of_one_value_are_matched_alone_and_right(store: FhirRepository) -> None:
    """More rows than the query takes (the same value under many systems): each condition is
    then looked for alone, and the answers stay right."""
    for n in range(40):
        await store.create({**patient(), "identifier": [{"system": f"urn:s{n}", "value": "7"}]})
    one = [("Patient", Search.parse("identifier=urn:s3|7"))]
    found = await store.in_unit(lambda unit: unit.one_match_each(one))
    assert found[0] is not None
    assert found[0].resource["identifier"] == [{"system": "urn:s3", "value": "7"}]
    every = [("Patient", Search.parse("identifier=7"))]
    with pytest.raises(OperationOutcomeError) as several:
        await store.in_unit(lambda unit: unit.one_match_each(every))
    assert several.value.status == 412
    assert "40 Patient resources match" in several.value.issues[0].diagnostics


async def test_a_match_read_before_is_kept_while_it_is_current(store: FhirRepository) -> None:
    stored = await store.create(procedure("Patient/1"))
    condition = [("Procedure", Search.parse(J1))]
    before = await store.in_snapshot(lambda view: view.one_match_each(condition))
    kept = await store.in_unit(lambda unit: unit.one_match_each(condition, before))
    assert kept[0] is not None
    assert kept[0].id == stored.id
    await store.update({**procedure("Patient/1", "entered-in-error"), "id": stored.id})
    fresh = await store.in_unit(lambda unit: unit.one_match_each(condition, before))
    assert fresh[0] is not None
    assert (fresh[0].version, fresh[0].resource["status"]) == (2, "entered-in-error")


async def test_a_condition_an_earlier_write_matches_finds_that_write(
    store: FhirRepository,
) -> None:
    """Resolved to nothing, then a write of the same unit gives it a match: the create under
    it finds that resource (as it did when it always looked), not a second one."""
    condition = Search.parse(J1)

    async def two_entries(unit: FhirSession) -> tuple[Stored, Stored]:
        assert await unit.one_match_each([("Procedure", condition), ("Patient", condition)]) == [
            None,
            None,
        ]
        written = await unit.create(procedure("Patient/1"))
        unit.still_unmatched("Procedure", condition)
        unit.still_unmatched("Patient", condition)  # no Patient written: still nothing
        again = await unit.create(procedure("Patient/2"), condition=condition)
        return written, again

    written, again = await store.in_unit(two_entries)
    assert (again.id, again.created) == (written.id, False)
    assert len(await store.search("Procedure", condition)) == 1


async def test_an_unchanged_match_is_a_no_op_until_the_unit_writes_it(
    repo: SqlRepository,
) -> None:
    stored = await repo.create(procedure("Patient/1"))
    resend = {**procedure("Patient/1"), "id": stored.id}
    changed = {**procedure("Patient/1", "entered-in-error"), "id": stored.id}

    async def resolve_then(unit: FhirSession) -> list[Stored | None]:
        [match] = await unit.one_match_each([("Procedure", Search.parse(J1))])
        assert match is not None
        answers = [unit.unchanged(resend, match), unit.unchanged(changed, match)]
        await unit.update(changed)
        return [*answers, unit.unchanged(resend, match)]  # written since: the update decides

    same, change, rewritten = await repo.in_unit(resolve_then)
    assert same is not None
    assert (same.unchanged, same.version, same.id) == (True, 1, stored.id)
    assert change is None
    assert rewritten is None
