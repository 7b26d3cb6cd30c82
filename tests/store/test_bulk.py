"""bulk_load writes what create writes, a batch at a time (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from reko_fhir.outcomes import OperationOutcomeError
from reko_fhir.store import Search, SqlRepository
from reko_fhir.store.bulk import bulk_load
from reko_fhir.store.outbox import Subscription, outbox_message
from reko_fhir.store.schema import (
    date_index,
    reference_index,
    resource_current,
    resource_version,
    token_index,
)

PNR = "http://electronichealth.se/identifier/personnummer"
KVA = "urn:oid:1.2.752.116.1.3.2.1.4"


def patient(number: str, resource_id: str | None = None) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Patient",
        "identifier": [{"system": PNR, "value": number}],
        "name": [{"family": "Ek"}],
    }
    if resource_id:
        resource["id"] = resource_id
    return resource


def procedure(subject: str, number: str, when: str, code: str = "GC001") -> dict[str, Any]:
    return {
        "resourceType": "Procedure",
        "meta": {"profile": ["http://reko-fhir.se/fhir/StructureDefinition/RekoProcedure"]},
        "identifier": [{"system": "urn:oid:1.2.752.9999.1", "value": number}],
        "status": "completed",
        "category": {"coding": [{"system": "urn:reko:part", "code": "personligt-stod"}]},
        "code": {"coding": [{"system": KVA, "code": code, "display": "Koordinering – stöd"}]},
        "subject": {"reference": subject},
        "performedDateTime": when,
    }


async def ids(repo: SqlRepository, resource_type: str, query: str) -> set[str]:
    return {s.id for s in await repo.search(resource_type, Search.parse(query, count=100))}


async def test_bulk_loaded_resources_are_found_and_read_like_created_ones(
    repo: SqlRepository,
) -> None:
    created_patient = await repo.create(patient("191212121212"))
    created = await repo.create(
        procedure(f"Patient/{created_patient.id}", "C-1", "2025-01-21T10:00:00+01:00")
    )
    # Exactly now: the store keeps microseconds, and a create answers within a millisecond of its
    # lastUpdated on SQLite (≈ 0.5 ms measured), so "now - 1 ms" could precede the created
    # Procedure and _lastUpdated=ge would find it too (issue 12, point 10).
    before_bulk = datetime.now(UTC)
    assert created.last_updated < before_bulk
    loaded = [
        patient("197804122385", "bulk-patient"),
        procedure("Patient/bulk-patient", "B-1", "2025-01-21T12:00:00+01:00"),
        procedure("Patient/bulk-patient", "B-2", "2025-03-02", code="GC002"),
        procedure("Patient/elsewhere", "B-3", "2024-12-31T23:30:00Z"),
    ]
    assert await bulk_load(repo, loaded, batch=3) == 4  # two batches
    by_number = {
        s.resource["identifier"][0]["value"]: s
        for s in await repo.search("Procedure", Search.parse("status=completed", count=100))
    }
    b1, b2, b3 = by_number["B-1"].id, by_number["B-2"].id, by_number["B-3"].id
    assert len({b1, b2, b3, created.id}) == 4  # ids were assigned, all different

    assert await ids(repo, "Procedure", "patient=bulk-patient") == {b1, b2}
    # Newest first, as every search (the patient search sorts on COALESCE, see Unit.search).
    newest_first = await repo.search("Procedure", Search.parse("patient=bulk-patient"))
    oldest_first = await repo.search(
        "Procedure", Search(params=(("patient", "bulk-patient"),), sort=("_lastUpdated",))
    )
    assert by_number["B-1"].last_updated < by_number["B-2"].last_updated  # loaded in this order
    assert [s.id for s in newest_first] == [b2, b1]
    assert [s.id for s in oldest_first] == [b1, b2]
    assert await ids(repo, "Procedure", "subject=Patient/bulk-patient") == {b1, b2}
    assert await ids(repo, "Procedure", f"patient={created_patient.id}") == {created.id}
    assert await ids(repo, "Patient", f"identifier={PNR}|197804122385") == {"bulk-patient"}
    assert await ids(repo, "Procedure", "identifier=urn:oid:1.2.752.9999.1|B-2") == {b2}
    assert await ids(repo, "Procedure", "patient.identifier=197804122385") == {b1, b2}
    assert await ids(repo, "Procedure", "date=2025-01-21") == {created.id, b1}
    assert await ids(repo, "Procedure", "date=ge2025-02-01") == {b2}
    assert await ids(repo, "Procedure", "date=lt2025-01-01") == {b3}
    assert await ids(repo, "Procedure", f"code={KVA}|GC001") == {created.id, b1, b3}
    assert await ids(repo, "Procedure", "code=GC002") == {b2}
    assert await ids(repo, "Procedure", "category=personligt-stod") == {created.id, b1, b2, b3}
    since = before_bulk.isoformat().replace("+00:00", "Z")
    assert await ids(repo, "Procedure", f"_lastUpdated=ge{since}") == {b1, b2, b3}
    assert await ids(repo, "Patient", f"_lastUpdated=ge{since}") == {"bulk-patient"}
    assert await repo.total("Procedure", Search.parse("patient=bulk-patient")) == 2

    read = await repo.read("Procedure", b1)
    assert read.version == 1
    assert read.last_updated >= before_bulk
    assert read.resource["id"] == b1
    assert read.resource["meta"] == {
        "profile": ["http://reko-fhir.se/fhir/StructureDefinition/RekoProcedure"],
        "versionId": "1",
        "lastUpdated": read.last_updated.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
    }
    assert (await repo.vread("Procedure", b1, 1)).resource == read.resource
    assert read.resource["code"]["coding"][0]["display"] == "Koordinering – stöd"
    with pytest.raises(OperationOutcomeError) as missing:
        await repo.vread("Procedure", b1, 2)
    assert missing.value.status == 404
    assert [s.version for s in await repo.history("Patient", "bulk-patient")] == [1]
    assert loaded[0]["id"] == "bulk-patient"
    assert "meta" not in loaded[0]  # the input is not changed

    # A bulk-loaded resource is an ordinary one afterwards: updated and reindexed.
    moved = await repo.update({**read.resource, "subject": {"reference": "Patient/elsewhere"}})
    assert moved.version == 2
    assert await ids(repo, "Procedure", "patient=bulk-patient") == {b2}
    assert await ids(repo, "Procedure", "patient=elsewhere") == {b1, b3}


def _rows_of(rows: list[Any], drop: tuple[str, ...]) -> list[tuple[Any, ...]]:
    return sorted(tuple(v for k, v in row._mapping.items() if k not in drop) for row in rows)


async def _stored_rows(repo: SqlRepository, resource_type: str, resource_id: str) -> Any:
    found: dict[str, Any] = {}
    async with repo.engine.connect() as conn:
        for table in (resource_version, resource_current, token_index, reference_index, date_index):
            query = select(table).where(table.c.type == resource_type, table.c.id == resource_id)
            found[table.name] = (await conn.execute(query)).all()
    return found


async def test_bulk_load_writes_the_rows_create_writes(repo: SqlRepository) -> None:
    resources = [
        patient("191212121212"),
        procedure("Patient/p1", "X-1", "2025-01-21T10:00:00+01:00"),
        {
            "resourceType": "EpisodeOfCare",
            "status": "active",
            "patient": {"reference": "Patient/p1"},
            "period": {"start": "2025-01-01"},
        },
    ]
    empty = await repo.row_counts()
    made = [await repo.create(r) for r in resources]
    after_create = await repo.row_counts()
    assert await bulk_load(repo, resources) == 3
    after_bulk = await repo.row_counts()
    written_by_create = {t: after_create[t] - empty[t] for t in empty}
    written_by_bulk = {t: after_bulk[t] - after_create[t] for t in empty}
    assert written_by_bulk == written_by_create
    assert written_by_bulk["token_index"] == 1 + 4 + 1  # identifier; + status, category, code
    assert written_by_bulk["reference_index"] == 2 + 1  # subject answers patient too
    assert written_by_bulk["date_index"] == 2

    everything = await repo.search("Procedure", Search(count=100))
    twin = next(s for s in everything if s.id != made[1].id)
    one = await _stored_rows(repo, "Procedure", made[1].id)
    other = await _stored_rows(repo, "Procedure", twin.id)
    for table in ("token_index", "reference_index", "date_index"):
        assert one[table], table
        drop = ("id", "last_updated")  # reference rows carry their version's time
        assert _rows_of(one[table], drop) == _rows_of(other[table], drop), table
    for rows in (one, other):  # … and partition, as resource_current has them
        current = rows["resource_current"][0]
        for reference in rows["reference_index"]:
            assert (reference.partition, reference.last_updated) == (
                current.partition,
                current.last_updated,
            )
    for table in ("resource_version", "resource_current"):
        drop = ("id", "last_updated", "content")
        assert _rows_of(one[table], drop) == _rows_of(other[table], drop)
        created_content, bulk_content = (
            json.loads(rows[table][0].content) for rows in (one, other)
        )
        for content in (created_content, bulk_content):
            content.pop("id")
            content["meta"].pop("lastUpdated")
        assert bulk_content == created_content


async def test_bulk_load_takes_an_async_iterable_and_keeps_batches(repo: SqlRepository) -> None:
    async def stream() -> AsyncIterator[dict[str, Any]]:
        for n in range(7):
            yield procedure("Patient/many", f"A-{n}", "2025-01-21")

    assert await bulk_load(repo, stream(), batch=2) == 7
    assert await bulk_load(repo, []) == 0
    assert await repo.total("Procedure", Search.parse("patient=many")) == 7
    assert await repo.count("Procedure") == 7
    with pytest.raises(ValueError, match="batch"):
        await bulk_load(repo, [], batch=0)


async def test_a_failing_batch_rolls_back_alone(repo: SqlRepository) -> None:
    await repo.create(patient("191212121212"))
    loaded = [
        patient("1", "a"),
        patient("2", "b"),
        patient("3", "c"),
        patient("4", "a"),  # stored already, one batch earlier
    ]
    before = await repo.row_counts()
    with pytest.raises(IntegrityError):
        await bulk_load(repo, loaded, batch=2)
    after = await repo.row_counts()
    assert after["resource_version"] == before["resource_version"] + 2
    assert after["token_index"] == before["token_index"] + 2
    assert await ids(repo, "Patient", "identifier=3") == set()
    assert await ids(repo, "Patient", "identifier=2") == {"b"}


async def test_bulk_load_queues_deliveries_like_a_unit(repo: SqlRepository) -> None:
    subscribed = SqlRepository(repo.engine, [Subscription("ehr", frozenset({"Patient"}))])
    created = await subscribed.create(patient("191212121212"))
    await bulk_load(
        subscribed, [patient("197804122385", "bulk"), procedure("Patient/b", "P", "2025")]
    )
    async with repo.engine.connect() as conn:
        rows = (await conn.execute(select(outbox_message).order_by(outbox_message.c.id))).all()
    assert [(r.resource_id, r.operation, r.version) for r in rows] == [
        (created.id, "upsert", 1),
        ("bulk", "upsert", 1),
    ]
    assert [r.ordering_key for r in rows] == [f"Patient/{created.id}", "Patient/bulk"]
    assert json.loads(rows[1].payload) == (await repo.read("Patient", "bulk")).resource
