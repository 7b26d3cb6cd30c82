"""The consent rules' reads in one query (:mod:`reko_fhir.store.context`): the same context
as the reads one by one, with fewer statements."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import event

from reko_fhir.outcomes import OperationOutcomeError
from reko_fhir.security.scopes import Scopes
from reko_fhir.security.session import GuardedSession
from reko_fhir.security.tokens import Principal
from reko_fhir.store import Search, SqlRepository, Stored
from reko_fhir.store.partition import Partitions
from reko_fhir.store.unit import Unit
from reko_fhir.validation.store_rules import OneQueryReader, patient_context

UNIT_A, UNIT_B = "SE2321000016-AAAA", "SE2321000016-BBBB"


class OneByOne:
    """The unit's reads without its one query: what the rules read before."""

    def __init__(self, unit: Unit) -> None:
        self.unit = unit

    async def search(self, resource_type: str, search: Search) -> list[Stored]:
        return await self.unit.search(resource_type, search)

    async def read(self, resource_type: str, resource_id: str) -> Stored:
        return await self.unit.read(resource_type, resource_id)

    async def about_patient(self, patient: str, types: tuple[str, ...]) -> list[Stored]:
        return await self.unit.about_patient(patient, types)

    async def read_current(self, resource_type: str, ids: list[str]) -> list[Stored]:
        return await self.unit.read_current(resource_type, ids)


def _org(name: str) -> dict[str, Any]:
    return {"resourceType": "Organization", "name": name}


def _consent(patient: str, *actors: str) -> dict[str, Any]:
    return {
        "resourceType": "Consent",
        "status": "active",
        "patient": {"reference": patient},
        "provision": {"actor": [{"reference": {"reference": a}} for a in actors]},
    }


async def test_one_query_reads_what_the_reads_one_by_one_read(repo: SqlRepository) -> None:
    async with repo.unit() as unit:
        care, fk, named, asked, gone = [(await unit.create(_org(n))).id for n in "abcde"]
        await unit.delete("Organization", gone)
        patient = f"Patient/{(await unit.create({'resourceType': 'Patient'})).id}"
        other = f"Patient/{(await unit.create({'resourceType': 'Patient'})).id}"
        role = {
            "resourceType": "PractitionerRole",
            "organization": {"reference": f"Organization/{care}"},
        }
        role_id = (await unit.create(role)).id
        await unit.create(_consent(patient, f"Organization/{fk}", f"Organization/{named}"))
        await unit.create(
            _consent(patient, f"Organization/{gone}", "Organization/x,y", "Patient/1")
        )
        await unit.create(_consent(other, f"Organization/{asked}"))
        # Consents naming no actor (no provision, or one without actor): nothing to list
        unnamed = {"resourceType": "Consent", "status": "active", "patient": {"reference": patient}}
        await unit.create(unnamed)
        await unit.create({**unnamed, "provision": {"type": "permit"}})
        episode = {"resourceType": "EpisodeOfCare", "patient": {"reference": patient}}
        await unit.create(episode)

    sent: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        sent.append(statement)

    organizations = {f"Organization/{asked}", "Organization/unknown", None}
    roles = {f"PractitionerRole/{role_id}", "PractitionerRole/unknown"}
    async with repo.unit() as unit:
        assert isinstance(unit, OneQueryReader)
        event.listen(repo.engine.sync_engine, "before_cursor_execute", count)
        try:
            one = await patient_context(unit, patient, organizations, roles=roles)
        finally:
            event.remove(repo.engine.sync_engine, "before_cursor_execute", count)
        several = await patient_context(OneByOne(unit), patient, organizations, roles=roles)
    assert one.entries == several.entries
    assert one.consents_for(patient) == several.consents_for(patient)
    found = {key for key in one.entries if key.startswith("Organization/")}
    assert found == {f"Organization/{i}" for i in (care, fk, named, asked)}
    assert len(sent) == 1  # the reads one by one: three


async def _three_patients(repo: SqlRepository) -> tuple[str, str, str]:
    """Unit A's own Patient, one it deleted, and unit B's: their ids."""
    mine, theirs = repo.scoped(Partitions.of_unit(UNIT_A)), repo.scoped(Partitions.of_unit(UNIT_B))
    async with mine.unit() as unit:
        own = (await unit.create({"resourceType": "Patient"})).id
        deleted = (await unit.create({"resourceType": "Patient"})).id
        await unit.delete("Patient", deleted)
    async with theirs.unit() as unit:
        foreign = (await unit.create({"resourceType": "Patient"})).id
    return own, deleted, foreign


async def test_the_query_reads_the_patient_as_the_guard_would(repo: SqlRepository) -> None:
    """The one query also reads the Patient the rows are about (``subject``), exactly as
    ``read_current`` finds it: the caller's own, not another unit's, not a deleted one."""
    mine = repo.scoped(Partitions.of_unit(UNIT_A))
    own, deleted, foreign = await _three_patients(repo)
    async with mine.unit() as unit:
        for patient_id in (own, deleted, foreign, "unknown"):
            rows = await unit.patient_rows(f"Patient/{patient_id}", ("Consent",), [], [])
            expected = await unit.read_current("Patient", [patient_id])
            assert rows.subject is not None
            assert rows.subject[0] == patient_id
            found = rows.subject[1]
            assert ([found] if found else []) == expected, patient_id
            assert (found is not None) == (patient_id == own)
        # not a Patient reference: nothing read, nothing to tell the guard
        assert (await unit.patient_rows("Group/1", ("Consent",), [], [])).subject is None


async def test_the_guard_uses_the_rules_read_of_the_patient(repo: SqlRepository) -> None:
    """A write after the consent rules' query sends no read of its own for the Patient, and
    still refuses a Patient the unit does not hold (another unit's, or deleted)."""
    mine = repo.scoped(Partitions.of_unit(UNIT_A))
    own, deleted, foreign = await _three_patients(repo)
    principal = Principal("someone", Scopes.parse("system/*.cruds"), care_unit=UNIT_A)

    async def write_about(patient_id: str) -> list[str]:
        sent: list[str] = []

        def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
            sent.append(statement)

        async with mine.unit() as unit:
            session = GuardedSession(unit, principal)
            event.listen(repo.engine.sync_engine, "before_cursor_execute", count)
            try:
                reference = f"Patient/{patient_id}"
                await patient_context(session, reference, set())
                encounter = {"resourceType": "Encounter", "subject": {"reference": reference}}
                await session.create(encounter)
            finally:
                event.remove(repo.engine.sync_engine, "before_cursor_execute", count)
        return [s for s in sent if "SELECT" in s.upper() and "INSERT INTO" not in s.upper()]

    assert len(await write_about(own)) == 1  # the rules' query; the guard read nothing more
    for refused in (deleted, foreign, "unknown"):
        with pytest.raises(OperationOutcomeError) as failure:
            await write_about(refused)
        assert failure.value.status == 422
        assert "is not known in this care unit" in str(failure.value.issues[0].diagnostics)
