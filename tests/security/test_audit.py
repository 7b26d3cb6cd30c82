"""The access log on SQLite and PostgreSQL: AuditEvents that validate, search by patient, date
and unit, group commit (many records, few transactions, each record durable when ``record``
returns), failures that reach every caller, and rows that are never overwritten."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import UTC, datetime, timedelta, timezone
from types import TracebackType
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from fhir.resources.R4B.auditevent import AuditEvent
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from reko_fhir.outcomes import OperationOutcomeError
from reko_fhir.security.audit import (
    AccessRecord,
    AuditLog,
    AuditWriteError,
    audit_entry,
    audit_event,
)
from reko_fhir.store import SqlRepository
from reko_fhir.store import audit as store
from reko_fhir.store.schema import metadata

UNIT_A = "SE2321000016-15CQ"
UNIT_B = "SE2321000016-7P1K"
STAFF = "SE2321000016-1003"
FK = "urn:oid:2.5.4.97|2021005521"
T0 = datetime(2025, 3, 10, 9, 0, tzinfo=UTC)


def access(**changes: Any) -> AccessRecord:
    values: dict[str, Any] = {
        "action": "R",
        "interaction": "read",
        "outcome": 200,
        "agent": STAFF,
        "unit": UNIT_A,
        "client_id": "ehr-north",
        "source_address": "10.1.2.3",
        "patients": ("Patient/p1",),
        "entities": ("Procedure/9",),
        "query": None,
        "recorded": T0,
    }
    return AccessRecord(**(values | changes))


class Counting:
    """``repository.transaction`` that counts the transactions it opens."""

    def __init__(self, repository: SqlRepository) -> None:
        self.repository = repository
        self.opened = 0

    def __call__(self) -> AbstractAsyncContextManager[AsyncConnection]:
        self.opened += 1
        return self.repository.transaction()


class Refused:
    """A transaction that cannot begin (the database is gone)."""

    async def __aenter__(self) -> AsyncConnection:
        raise OSError("connection refused")

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        return None


async def read(repo: SqlRepository, event_id: str) -> dict[str, Any] | None:
    async with repo.engine.connect() as conn:
        return await store.read(conn, event_id)


# -- the AuditEvent ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "record",
    [
        access(),
        access(
            interaction="search-type",
            entities=(),
            patients=("Patient/p1", "Patient/p2"),
            query="patient.identifier=************&_count=10",
        ),
        access(action="C", interaction="create", outcome=201, unit=FK, client_id=None),
        access(action="D", interaction="delete", outcome=403, source_address=None),
        access(action="E", interaction="operation", outcome=500, unit=None, patients=()),
        access(action="U", interaction="delivery", outcome=200, client_id=None),
    ],
    ids=["read", "search", "create-external", "delete-refused", "operation-failed", "delivery"],
)
def test_the_audit_event_is_valid_fhir_r4(record: AccessRecord) -> None:
    event = audit_event(record, event_id="0123abcd")
    parsed = AuditEvent.model_validate(event)
    assert parsed.id == "0123abcd"
    assert event["type"]["code"] == "rest"
    assert event["recorded"] == "2025-03-10T09:00:00.000000Z"
    assert event["source"]["observer"] == {"display": "reko-fhir"}
    user = event["agent"][0]
    assert user["requestor"] is True
    assert user["who"]["identifier"] == {"system": "urn:oid:1.2.752.29.4.19", "value": STAFF}
    assert [a["requestor"] for a in event["agent"]].count(True) == 1
    expected = {200: "0", 201: "0", 403: "4", 500: "8"}[record.outcome]
    assert event["outcome"] == expected
    whats = [e["what"]["reference"] for e in event.get("entity", []) if "what" in e]
    assert whats == [*record.patients, *record.entities]


def test_the_details_follow_balp() -> None:
    record = access(
        interaction="search-type",
        patients=("Patient/p1",),
        entities=(),
        query="patient=p1&date=ge2025",
    )
    event = audit_event(record)
    assert "id" not in event
    assert event["subtype"] == [
        {"system": "http://hl7.org/fhir/restful-interaction", "code": "search-type"}
        | {"display": "search-type"}
    ]
    user, unit, client, server = event["agent"]
    assert user["network"] == {"address": "10.1.2.3", "type": "2"}
    assert user["type"]["coding"][0]["code"] == "IRCP"
    assert unit["who"]["identifier"]["value"] == UNIT_A
    assert unit["type"]["coding"][0]["code"] == "PROV"
    assert client["who"]["identifier"]["value"] == "ehr-north"
    assert client["type"]["coding"][0]["code"] == "110153"
    assert server["type"]["coding"][0]["code"] == "110152"
    patient, query = event["entity"]
    assert patient["role"]["code"] == "1"
    assert query["role"]["code"] == "24"
    assert base64.b64decode(query["query"]).decode() == "patient=p1&date=ge2025"
    external = audit_event(access(action="C", interaction="create", unit=FK))["agent"][1]
    assert external["who"]["identifier"] == {"system": "urn:oid:2.5.4.97", "value": "2021005521"}
    delivery = audit_event(access(action="U", interaction="delivery"))
    assert delivery["subtype"][0]["code"] == "110106"  # an export
    assert delivery["agent"][0]["type"]["coding"][0]["code"] == "INF"
    assert event == audit_event(record)  # a function of the record alone


@pytest.mark.parametrize(
    "changes",
    [
        {"action": "X"},
        {"interaction": "peek"},
        {"outcome": 42},
        {"agent": ""},
        {"agent": "S" * 129},
        {"patients": ("p1",)},
        {"recorded": datetime(2025, 1, 1)},  # naive on purpose
    ],
)
def test_a_malformed_record_is_refused_where_it_is_made(changes: dict[str, Any]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 -- each case has its own message
        access(**changes)


# -- storing and searching -----------------------------------------------------------------


async def test_records_round_trip_and_search(repo: SqlRepository) -> None:
    log = AuditLog(repo.transaction)
    stockholm = timezone(timedelta(hours=1))
    records = [
        access(recorded=T0, patients=("Patient/p1",)),
        access(recorded=T0 + timedelta(days=1), patients=("Patient/p1", "Patient/p2")),
        access(recorded=T0 + timedelta(days=2), patients=("Patient/p2",), unit=UNIT_B),
        # 00:30 in Stockholm is 23:30 UTC the day before: searched by its UTC instant.
        access(
            recorded=datetime(2025, 3, 14, 0, 30, tzinfo=stockholm),
            patients=("Patient/p1",),
            unit=None,
        ),
    ]
    ids = [await log.record(r) for r in records]
    await log.close()
    assert len(set(ids)) == 4
    assert all(len(i) == 32 for i in ids)

    async with repo.engine.connect() as conn:

        async def found(**filters: Any) -> list[str]:
            options: dict[str, Any] = {"patient": None, "date_params": (), "unit": None} | filters
            page = await store.search(conn, count=options.pop("count", 20), **options)
            counted = await store.total(
                conn, **{k: options[k] for k in ("patient", "date_params", "unit")}
            )
            if "offset" not in options:
                assert counted == len(page)
            return [e["id"] for e in page]

        assert await found() == ids[::-1]  # newest first
        assert await found(patient="Patient/p1") == [ids[3], ids[1], ids[0]]
        assert await found(patient="p2") == [ids[2], ids[1]]
        assert await found(patient="Patient/p1,Patient/p2") == ids[::-1]
        assert await found(patient="Patient/nobody") == []
        assert await found(date_params=["ge2025-03-11"]) == [ids[3], ids[2], ids[1]]
        assert await found(date_params=["le2025-03-11"]) == [ids[1], ids[0]]
        assert await found(date_params=["ge2025-03-11", "le2025-03-12"]) == [ids[2], ids[1]]
        assert await found(date_params=["gt2025-03-11"]) == [ids[3], ids[2]]
        assert await found(date_params=["lt2025-03-11"]) == [ids[0]]
        assert await found(date_params=["2025-03-13"]) == [ids[3]]
        assert await found(date_params=["eq2025-03-13T23:30:00Z"]) == [ids[3]]
        assert await found(unit=UNIT_A) == [ids[1], ids[0]]
        assert await found(unit=UNIT_B, patient="Patient/p2") == [ids[2]]
        assert await found(unit=UNIT_B, patient="Patient/p1") == []
        assert await store.search(conn, count=2, offset=1) == [
            await store.read(conn, ids[2]),
            await store.read(conn, ids[1]),
        ]
        assert await store.search(conn, count=2, offset=4) == []
        assert await store.total(conn, patient="Patient/p1", date_params=["ge2025-03-11"]) == 2
        with pytest.raises(OperationOutcomeError) as bad:
            await store.search(conn, date_params=["ge-yesterday"])
        assert bad.value.status == 400

        stored = await store.read(conn, ids[3])
        assert await store.read(conn, "0" * 32) is None
    assert stored is not None
    assert stored == audit_event(records[3], event_id=ids[3])
    assert stored["recorded"] == "2025-03-13T23:30:00.000000Z"
    AuditEvent.model_validate(stored)
    counts = await repo.row_counts()
    assert counts["audit_event"] == 4
    assert counts["audit_patient"] == 5


async def test_group_commit_batches_concurrent_records(repo: SqlRepository) -> None:
    counting = Counting(repo)
    log = AuditLog(counting)

    async def one(n: int) -> str:
        event_id = await log.record(access(patients=(f"Patient/p{n}",)))
        # Durable when record returns: another connection already sees the row.
        assert await read(repo, event_id) is not None
        return event_id

    ids = await asyncio.gather(*(one(n) for n in range(200)))
    await log.close()
    assert len(set(ids)) == 200
    # The records queued together share transactions: far fewer than one each.
    assert 1 <= counting.opened <= 5, counting.opened
    counts = await repo.row_counts()
    assert counts["audit_event"] == 200
    assert counts["audit_patient"] == 200
    async with repo.engine.connect() as conn:
        assert [e["id"] for e in await store.search(conn, patient="Patient/p7")] == [ids[7]]


async def test_batches_of_one_statement_commit_whole_or_not_at_all(repo: SqlRepository) -> None:
    # The log's ``statement`` connection (PostgreSQL: autocommit, the batch one statement).
    log = AuditLog(repo.transaction, statement=repo.statement)
    records = [access(patients=(f"Patient/p{n}", "Patient/both")) for n in range(30)]
    ids = await asyncio.gather(*(log.record(r) for r in records))
    await log.close()
    assert len(set(ids)) == 30
    assert (await read(repo, ids[7])) == audit_event(records[7], event_id=ids[7])
    async with repo.engine.connect() as conn:
        assert [e["id"] for e in await store.search(conn, patient="Patient/p7")] == [ids[7]]
        assert await store.total(conn, patient="Patient/both") == 30
    # A batch one of whose events collides writes none of its events, nor their patients.
    fresh = audit_entry(access(patients=("Patient/p99",)))
    clash = audit_entry(access(patients=("Patient/p98",)), event_id=ids[0])
    with pytest.raises(IntegrityError):
        async with repo.statement() as conn:
            await store.append(conn, [fresh, clash], subscriptions=())
    counts = await repo.row_counts()
    assert (counts["audit_event"], counts["audit_patient"]) == (30, 60)
    # An event naming no patient is stored alone.
    async with repo.statement() as conn:
        await store.append(conn, [audit_entry(access(patients=()))], subscriptions=())
    counts = await repo.row_counts()
    assert (counts["audit_event"], counts["audit_patient"]) == (31, 60)


async def test_a_batch_holds_at_most_batch_size_records(repo: SqlRepository) -> None:
    counting = Counting(repo)
    log = AuditLog(counting, batch_size=50)
    await asyncio.gather(*(log.record(access()) for _ in range(200)))
    assert counting.opened == 4
    # Records arriving while a batch commits go into the next one.
    first = asyncio.gather(*(log.record(access()) for _ in range(10)))
    await asyncio.sleep(0)
    second = asyncio.gather(*(log.record(access()) for _ in range(10)))
    await asyncio.gather(first, second)
    await log.close()
    assert counting.opened == 6
    assert (await repo.row_counts())["audit_event"] == 220


async def test_a_failing_flush_reaches_every_caller_and_the_log_recovers(
    repo: SqlRepository,
) -> None:
    opened = 0

    def flaky() -> AbstractAsyncContextManager[AsyncConnection]:
        nonlocal opened
        opened += 1
        return Refused() if opened == 1 else repo.transaction()

    log = AuditLog(flaky)
    results = await asyncio.wait_for(
        asyncio.gather(*(log.record(access()) for _ in range(20)), return_exceptions=True),
        timeout=10,
    )
    assert all(isinstance(r, AuditWriteError) for r in results)
    assert all(isinstance(r.__cause__, OSError) for r in results if isinstance(r, BaseException))
    assert len({id(r) for r in results}) == 20  # each caller its own exception
    assert (await repo.row_counts())["audit_event"] == 0
    # The next records are written again.
    event_id = await asyncio.wait_for(log.record(access()), timeout=10)
    assert await read(repo, event_id) is not None
    await log.close()


async def test_a_failure_inside_the_transaction_writes_none_of_the_batch(
    repo: SqlRepository,
) -> None:
    existing = audit_entry(access())
    async with repo.transaction() as conn:
        await store.append(conn, [existing], subscriptions=())

    @asynccontextmanager
    async def colliding() -> AsyncIterator[AsyncConnection]:
        async with repo.transaction() as conn:
            yield conn
            await store.append(
                conn, [existing], subscriptions=()
            )  # the batch's commit fails on the key

    log = AuditLog(colliding)
    results = await asyncio.wait_for(
        asyncio.gather(*(log.record(access()) for _ in range(5)), return_exceptions=True),
        timeout=10,
    )
    assert all(isinstance(r, AuditWriteError) for r in results)
    assert all(
        isinstance(r.__cause__, IntegrityError) for r in results if isinstance(r, BaseException)
    )
    assert (await repo.row_counts())["audit_event"] == 1
    await log.close()


async def test_rows_are_never_overwritten(repo: SqlRepository) -> None:
    original = audit_entry(access(patients=("Patient/p1",)))
    async with repo.transaction() as conn:
        await store.append(conn, [original], subscriptions=())
    forged = audit_entry(access(patients=("Patient/p9",), agent="SE2321000016-9999"))
    with pytest.raises(IntegrityError):
        async with repo.transaction() as conn:
            await store.append(
                conn, [audit_entry(access(), event_id=original.id)], subscriptions=()
            )
    with pytest.raises(IntegrityError):
        async with repo.transaction() as conn:
            # Nor can a batch sneak a copy in beside a new record: the whole batch fails.
            await store.append(conn, [forged, original], subscriptions=())
    assert await read(repo, original.id) == original.content
    counts = await repo.row_counts()
    assert (counts["audit_event"], counts["audit_patient"]) == (1, 1)
    # The store offers appending and reading, nothing that changes or removes a row.
    public = {
        name for name in vars(store) if not name.startswith("_") and callable(vars(store)[name])
    }
    assert not {n for n in public if n.startswith(("update", "delete", "purge", "remove"))}


async def test_a_caller_that_gives_up_still_gets_its_access_logged(repo: SqlRepository) -> None:
    log = AuditLog(repo.transaction)
    task = asyncio.create_task(log.record(access()))
    await asyncio.sleep(0)  # queued
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await log.flush()
    assert (await repo.row_counts())["audit_event"] == 1
    await log.close()
    with pytest.raises(AuditWriteError):
        await log.record(access())


async def test_the_migration_builds_what_the_tables_declare(repo: SqlRepository) -> None:
    async with repo.engine.connect() as conn:
        differences = await conn.run_sync(
            lambda sync: compare_metadata(MigrationContext.configure(sync), metadata)
        )
    assert differences == []
    assert {"audit_event", "audit_patient"} <= set(await repo.row_counts())
