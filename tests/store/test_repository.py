"""One suite for every repository implementation (SQLite, PostgreSQL and, for the FHIR
interactions, memory)."""

from __future__ import annotations

import asyncio
from importlib.resources import files
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text

from reko_fhir.outcomes import OperationOutcomeError
from reko_fhir.store import FhirRepository, Partitions, Search, SqlRepository
from reko_fhir.store.memory import MemoryRepository
from reko_fhir.store.schema import metadata
from tests.store.conftest import postgres_schema

PNR = "http://electronichealth.se/identifier/personnummer"


def patient(number: str = "191212121212") -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "identifier": [{"system": PNR, "value": number}],
        "name": [{"family": "Ek"}],
    }


def procedure(subject: str, status: str = "completed") -> dict[str, Any]:
    return {
        "resourceType": "Procedure",
        "identifier": [{"system": "urn:oid:1.2.752.9999.1", "value": "J-1"}],
        "status": status,
        "code": {"coding": [{"system": "urn:oid:1.2.752.116.1.3.2.1.4", "code": "GC001"}]},
        "subject": {"reference": subject},
    }


async def test_create_read_vread_and_versions(store: FhirRepository) -> None:
    created = await store.create(patient())
    assert created.created
    assert created.version == 1
    assert created.resource["meta"]["versionId"] == "1"
    read = await store.read("Patient", created.id)
    assert read.resource == created.resource
    updated = await store.update({**read.resource, "active": True})
    assert (updated.version, updated.created) == (2, False)
    assert (await store.vread("Patient", created.id, 1)).resource.get("active") is None
    assert (await store.read("Patient", created.id)).resource["active"] is True
    assert [s.version for s in await store.history("Patient", created.id)] == [2, 1]


async def test_unknown_and_deleted_resources(store: FhirRepository) -> None:
    with pytest.raises(OperationOutcomeError) as unknown:
        await store.read("Patient", "nope")
    assert unknown.value.status == 404
    created = await store.create(patient())
    assert await store.delete("Patient", created.id) == 2
    with pytest.raises(OperationOutcomeError) as gone:
        await store.read("Patient", created.id)
    assert gone.value.status == 410
    assert await store.delete("Patient", created.id) is None  # deleting twice changes nothing
    assert (await store.vread("Patient", created.id, 1)).version == 1  # history stays
    assert await store.search("Patient", Search.parse(f"identifier={PNR}|191212121212")) == []


async def test_if_match_on_a_stale_version_is_412_and_stores_nothing(store: FhirRepository) -> None:
    created = await store.create(patient())
    await store.update({**created.resource, "active": True}, if_match=1)
    before = await store.total("Patient", Search())
    with pytest.raises(OperationOutcomeError) as stale:
        await store.update({**created.resource, "active": False}, if_match=1)
    assert stale.value.status == 412
    assert await store.total("Patient", Search()) == before


async def test_search_by_identifier_patient_status_and_id(store: FhirRepository) -> None:
    anna = await store.create(patient("191212121212"))
    other = await store.create(patient("197804122385"))
    done = await store.create(procedure(f"Patient/{anna.id}"))
    await store.create(procedure(f"Patient/{other.id}", status="in-progress"))
    assert [
        s.id for s in await store.search("Patient", Search.parse(f"identifier={PNR}|191212121212"))
    ] == [anna.id]
    assert [
        s.id for s in await store.search("Patient", Search.parse("identifier=197804122385"))
    ] == [other.id]
    assert [s.id for s in await store.search("Procedure", Search.parse(f"patient={anna.id}"))] == [
        done.id
    ]
    assert [
        s.id
        for s in await store.search(
            "Procedure", Search.parse(f"subject=Patient/{anna.id}&status=completed")
        )
    ] == [done.id]
    assert (
        await store.search(
            "Procedure", Search.parse(f"subject=Patient/{anna.id}&status=in-progress")
        )
        == []
    )
    assert (
        len(
            await store.search(
                "Procedure", Search.parse("code=urn:oid:1.2.752.116.1.3.2.1.4|GC001")
            )
        )
        == 2
    )
    assert [s.id for s in await store.search("Patient", Search.parse(f"_id={other.id}"))] == [
        other.id
    ]
    with pytest.raises(OperationOutcomeError, match="not supported"):
        await store.search("Patient", Search.parse("shoeSize=44"))


async def test_an_update_reindexes(store: FhirRepository) -> None:
    created = await store.create(patient("191212121212"))
    await store.update(
        {**created.resource, "identifier": [{"system": PNR, "value": "197804122385"}]}
    )
    assert await store.search("Patient", Search.parse("identifier=191212121212")) == []
    assert len(await store.search("Patient", Search.parse("identifier=197804122385"))) == 1


async def test_conditional_create_returns_the_existing_resource(store: FhirRepository) -> None:
    condition = Search.parse(f"identifier={PNR}|191212121212")
    first = await store.create(patient(), if_none_exist=condition)
    again = await store.create(patient(), if_none_exist=condition)
    assert (first.created, again.created, again.id) == (True, False, first.id)


async def test_conditional_update_creates_then_updates(store: FhirRepository) -> None:
    condition = Search.parse("identifier=urn:oid:1.2.752.9999.1|J-1")
    made = await store.conditional_update(procedure("Patient/1"), condition)
    changed = await store.conditional_update(
        procedure("Patient/1", status="entered-in-error"), condition
    )
    assert made.created
    assert (changed.id, changed.version, changed.resource["status"]) == (
        made.id,
        2,
        "entered-in-error",
    )


async def test_several_matches_make_a_condition_fail_with_412(store: FhirRepository) -> None:
    await store.create(procedure("Patient/1"))
    await store.create(procedure("Patient/2"))
    with pytest.raises(OperationOutcomeError) as several:
        await store.create(procedure("Patient/3"), if_none_exist=Search.parse("identifier=J-1"))
    assert several.value.status == 412


async def test_fifty_identical_conditional_creates_in_parallel_store_one(
    store: FhirRepository,
) -> None:
    """The race HAPI, Microsoft's server and Medplum had: decided by a unique constraint."""
    condition = Search.parse(f"identifier={PNR}|191212121212")
    results = await asyncio.gather(
        *(store.create(patient(), if_none_exist=condition) for _ in range(50))
    )
    assert sum(r.created for r in results) == 1
    assert len({r.id for r in results}) == 1
    assert len(await store.search("Patient", condition)) == 1
    assert await store.total("Patient", Search()) == 1


async def test_fifty_identical_conditional_updates_in_parallel_create_one(
    store: FhirRepository,
) -> None:
    condition = Search.parse("identifier=urn:oid:1.2.752.9999.1|J-1")
    results = await asyncio.gather(
        *(store.conditional_update(procedure("Patient/1"), condition) for _ in range(50)),
        return_exceptions=True,
    )
    failures = [r for r in results if isinstance(r, BaseException)]
    stored = await store.search("Procedure", condition)
    assert len(stored) == 1, failures
    created = [r for r in results if not isinstance(r, BaseException) and r.created]
    assert len(created) == 1, failures
    assert all(isinstance(f, OperationOutcomeError) and f.status == 409 for f in failures), [
        repr(f) for f in failures
    ]


async def test_a_unit_is_atomic(repo: SqlRepository) -> None:
    """A transaction Bundle's entries land together or not at all."""
    before = await repo.count()

    async def three_entries_the_last_stale() -> None:
        async with repo.unit() as unit:
            await unit.create(patient("191212121212"))
            await unit.create(procedure("Patient/1"))
            await unit.update({**patient(), "id": "x"}, if_match=3)  # stale: the whole unit fails

    with pytest.raises(OperationOutcomeError):
        await three_entries_the_last_stale()
    assert await repo.count() == before
    async with repo.unit() as unit:
        first = await unit.create(patient("191212121212"))
        second = await unit.create(procedure(f"Patient/{first.id}"))
    assert await repo.count() == before + 2
    assert (await repo.read("Procedure", second.id)).resource["subject"][
        "reference"
    ] == f"Patient/{first.id}"


async def test_history_lists_versions_without_deletions(store: FhirRepository) -> None:
    created = await store.create(patient())
    await store.update({**created.resource, "active": True})
    await store.delete("Patient", created.id)
    assert [s.version for s in await store.history("Patient", created.id)] == [2, 1]
    with pytest.raises(OperationOutcomeError) as deleted:
        await store.vread("Patient", created.id, 3)
    assert deleted.value.status == 410


async def test_the_schema_is_migrated_to_the_newest_revision(repo: SqlRepository) -> None:
    async with repo.engine.connect() as conn:
        revision = (
            await conn.execute(text("SELECT version_num FROM alembic_version"))
        ).scalar_one()
    config = Config()
    config.set_main_option("script_location", str(files("reko_fhir.store").joinpath("migrations")))
    assert revision == ScriptDirectory.from_config(config).get_current_head()
    async with repo.engine.connect() as conn:
        # The migrations build exactly the tables and indexes schema.py declares.
        differences = await conn.run_sync(
            lambda sync: compare_metadata(MigrationContext.configure(sync), metadata)
        )
    assert differences == []
    opened_again = await SqlRepository.open(repo.engine.url.render_as_string(hide_password=False))
    await opened_again.close()  # migrating an up-to-date schema is a no-op, not an error


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
async def test_workers_starting_at_once_on_a_fresh_store_migrate_once(
    database: str, tmp_path: Path
) -> None:
    """uvicorn --workers 2 opens a new store twice at the same moment; both must come up."""

    async def open_four(url: str) -> None:
        opened = await asyncio.gather(*(SqlRepository.open(url) for _ in range(4)))
        for store in opened:
            await store.close()

    if database == "sqlite":
        await open_four(f"sqlite+aiosqlite:///{tmp_path / 'fresh.sqlite3'}")
        return
    async with postgres_schema() as url:
        await open_four(url.replace("postgresql://", "postgresql+psycopg://", 1))


async def test_about_patient_reads_current_resources_of_the_types_asked(
    store: FhirRepository,
) -> None:
    """What the consent rules read in one query: the patient's own, current, not deleted
    resources of the types asked, newest first; and organisations by id, unknown ones left out."""
    anna, other = await store.create(patient("191212121212")), await store.create(patient())
    consent = {"resourceType": "Consent", "status": "active", "patient": {}}
    older = await store.create({**consent, "patient": {"reference": f"Patient/{anna.id}"}})
    episode = {"resourceType": "EpisodeOfCare", "status": "active"}
    newer = await store.create({**episode, "patient": {"reference": f"Patient/{anna.id}"}})
    gone = await store.create({**consent, "patient": {"reference": f"Patient/{anna.id}"}})
    await store.delete("Consent", gone.id)
    await store.create({**consent, "patient": {"reference": f"Patient/{other.id}"}})
    await store.create(procedure(f"Patient/{anna.id}"))  # patient too, but not a type asked

    found = await store.about_patient(f"Patient/{anna.id}", ("Consent", "EpisodeOfCare"))
    assert [s.id for s in found] == [newer.id, older.id]
    assert await store.about_patient(f"Patient/{anna.id}", ("CarePlan",)) == []

    org = await store.create({"resourceType": "Organization", "name": "Försäkringskassan"})
    read = await store.read_current("Organization", [org.id, "no-such-organisation"])
    assert [(s.id, s.resource["name"]) for s in read] == [(org.id, "Försäkringskassan")]


async def test_a_page_carries_the_total_of_all_matches(store: FhirRepository) -> None:
    anna = await store.create(patient())
    made = [await store.create(procedure(f"Patient/{anna.id}")) for _ in range(5)]
    await store.create(procedure("Patient/someone-else"))
    by_anna = Search.parse(f"patient=Patient/{anna.id}", count=2)

    first, total = await store.page("Procedure", by_anna)
    assert total == 5 == await store.total("Procedure", by_anna)
    assert [s.id for s in first] == [s.id for s in await store.search("Procedure", by_anna)]
    assert [s.id for s in first] == [s.id for s in made[::-1][:2]]  # newest first
    last, total = await store.page("Procedure", Search(by_anna.params, 2, 4))
    assert ([s.id for s in last], total) == ([made[0].id], 5)
    # Past the end there is no row to carry the count: it is counted apart.
    assert await store.page("Procedure", Search(by_anna.params, 2, 10)) == ([], 5)
    assert await store.page("Procedure", Search.parse("patient=Patient/nobody")) == ([], 0)


async def test_sort_by_a_date_parameter_puts_resources_without_it_last(
    store: FhirRepository,
) -> None:
    """_sort on a date parameter (https://hl7.org/fhir/R4/search.html#sort), in every store."""
    made = {}
    for day in ("2025-03-01", "2025-01-01", None, "2025-02-01"):
        resource = procedure("Patient/1")
        if day:
            resource["performedDateTime"] = day
        made[day] = (await store.create(resource)).id
    ascending = await store.search("Procedure", Search(sort=("date",)))
    descending = await store.search("Procedure", Search(sort=("-date",)))
    order = ["2025-01-01", "2025-02-01", "2025-03-01"]
    assert [s.id for s in ascending] == [made[d] for d in [*order, None]]
    assert [s.id for s in descending] == [made[d] for d in [*order[::-1], None]]


@pytest.mark.parametrize("sort", [(), ("date",), ("-date",), ("_id",), ("-_lastUpdated",)])
async def test_a_patients_pages_follow_the_sort_and_count_every_match(
    store: FhirRepository, sort: tuple[str, ...]
) -> None:
    """A patient's search, page by page (every store): the pages in ``sort``, without gaps or
    repeats, each with the patient's full count, however the page is cut."""
    for day in ("2025-03-01", "2025-01-01", None, "2025-02-01", "2025-01-15", None, "2025-04-01"):
        resource = procedure("Patient/paged")
        if day:
            resource["performedDateTime"] = day
        await store.create(resource)
    await store.create(procedure("Patient/other"))
    params = (("patient", "Patient/paged"),)
    everything = await store.search("Procedure", Search(params, 50, sort=sort))
    assert len(everything) == 7
    pages = [await store.page("Procedure", Search(params, 3, offset, sort)) for offset in (0, 3, 6)]
    assert [total for _, total in pages] == [7, 7, 7]
    assert [s.id for found, _ in pages for s in found] == [s.id for s in everything]
    if sort == ("date",):
        days = [s.resource.get("performedDateTime") for s in everything]
        assert days[:5] == ["2025-01-01", "2025-01-15", "2025-02-01", "2025-03-01", "2025-04-01"]
        assert days[5:] == [None, None]


async def test_a_chained_search_finds_only_patients_of_the_partitions_it_reads(
    store: SqlRepository | MemoryRepository,
) -> None:
    """``Procedure?subject.identifier=…`` in unit B names no Patient of unit A, even when B's
    own Procedure points at A's Patient id (every store: SQLite, PostgreSQL, memory)."""
    unit_a = store.scoped(Partitions.of_unit("SE2321000016-AAAA"))
    unit_b = store.scoped(Partitions.of_unit("SE2321000016-BBBB"))
    anna = await unit_a.create(patient("191212121212"))
    await unit_b.create(procedure(f"Patient/{anna.id}"))
    chained = Search.parse(f"subject.identifier={PNR}|191212121212")
    assert await unit_b.search("Procedure", chained) == []
    assert len(await store.search("Procedure", chained)) == 1  # seen from every partition
