"""Recording a turn (``outbox_delivery.record``): one statement on PostgreSQL, the separate
writes on SQLite, with the same result on both — each attempt logged, each message moved on
(delivered, retried later, dead), a message no longer pending left alone, and the targets'
names of our resources remembered or corrected."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update

from reko_fhir.store import audit, outbox, outbox_admin, outbox_delivery
from reko_fhir.store.audit import AuditEntry, audit_event
from reko_fhir.store.outbox import Subscription, outbox_message
from reko_fhir.store.outbox_delivery import AttemptOutcome
from tests.delivery.test_outbox import open_store, patient, store_url  # noqa: F401 - fixture
from tests.writes import put

LONG = 'refused: "quoted", \\ back-slashed, ' + "x" * 5000


async def test_a_turn_is_recorded_alike_on_both_databases(
    store_url: str,  # noqa: F811 - the fixture
) -> None:
    repo = await open_store(store_url, Subscription("ehr", frozenset()))
    try:
        for n in range(5):
            await put(repo, patient(n))
        async with repo.transaction() as conn:
            claimed = await outbox_delivery.claim(
                conn, worker="w", limit=10, lease=timedelta(seconds=60)
            )
            by_id = {m.resource_id: m for m in claimed}
            # p4 was resent meanwhile by someone else: not pending, so left alone.
            await conn.execute(
                update(outbox_message)
                .where(outbox_message.c.id == by_id["p4"].id)
                .values(status="dead", dead_reason="gave-up")
            )
        later = datetime.now(UTC) + timedelta(seconds=30)
        outcomes = [
            AttemptOutcome(by_id["p0"], "delivered", 201),
            AttemptOutcome(by_id["p1"], "delivered", 200),
            AttemptOutcome(by_id["p2"], "retry", 503, "busy", later),
            AttemptOutcome(by_id["p3"], "dead", 422, LONG, None, "rejected"),
            AttemptOutcome(by_id["p4"], "delivered", 200),
        ]
        async with repo.transaction() as conn:
            await outbox.remember_references(conn, "ehr", {"Patient/p1": "Patient/old"})
        names = {
            "ehr": {"Patient/p0": "Patient/r0", "Patient/p1": "Patient/r1"},
            "other": {"Patient/p0": "Patient/x0"},
        }
        async with repo.transaction() as conn:
            await outbox_delivery.record(conn, outcomes, names)
        async with repo.transaction(writer=False) as conn:
            shown = {m.resource_id: await outbox_admin.message(conn, m.id) for m in claimed}
            ehr = await outbox.known_references(conn, "ehr", ["Patient/p0", "Patient/p1"])
            other = await outbox.known_references(conn, "other", ["Patient/p0"])
            locks = {
                row.id: (row.locked_by, row.finished_at is not None)
                for row in await conn.execute(
                    select(
                        outbox_message.c.id,
                        outbox_message.c.locked_by,
                        outbox_message.c.finished_at,
                    )
                )
            }
    finally:
        await repo.close()
    state = {
        rid: (
            m.status,
            m.attempts,
            m.dead_reason,
            m.last_error,
            [(a.number, a.result, a.status, a.reason) for a in attempts],
        )
        for rid, (m, attempts) in ((rid, found) for rid, found in shown.items() if found)
    }
    assert state["p0"] == ("delivered", 1, None, None, [(1, "delivered", 201, None)])
    assert state["p1"] == ("delivered", 1, None, None, [(1, "delivered", 200, None)])
    assert state["p2"] == ("pending", 1, None, "busy", [(1, "retry", 503, "busy")])
    assert state["p3"] == ("dead", 1, "rejected", LONG, [(1, "dead", 422, LONG[:4000])])
    # The attempt is logged, but the message someone else moved on keeps its state.
    assert state["p4"] == ("dead", 0, "gave-up", None, [(1, "delivered", 200, None)])
    p2 = shown["p2"]
    assert p2 is not None
    assert abs((p2[0].next_attempt_at - later).total_seconds()) < 0.01
    assert locks[by_id["p0"].id] == (None, True)
    assert locks[by_id["p2"].id] == (None, False)  # a retry is not finished
    assert locks[by_id["p3"].id] == (None, True)
    assert ehr == {"Patient/p0": "Patient/r0", "Patient/p1": "Patient/r1"}
    assert other == {"Patient/p0": "Patient/x0"}


async def test_an_empty_turn_records_nothing(store_url: str) -> None:  # noqa: F811
    repo = await open_store(store_url, Subscription("ehr", frozenset()))
    try:
        async with repo.transaction() as conn:
            await outbox_delivery.record(conn, [], {})
            await outbox_delivery.record(conn, [], {"ehr": {}})
        assert (await repo.row_counts())["outbox_attempt"] == 0
    finally:
        await repo.close()


async def test_audit_events_round_trip_whatever_their_text(
    store_url: str,  # noqa: F811 - the fixture
) -> None:
    """The worker's AuditEvents go to PostgreSQL as binary arrays: quotes, backslashes,
    braces, commas, ``NULL`` and non-ASCII text come back as they went."""
    odd = 'a "quoted" \\ back\\slash, {braces}, NULL, åäö ✓'
    named = 'Patient/"q"\\{b}NULL'  # a patient search splits at commas
    entries = [
        AuditEntry(
            id=f"e{n}",
            recorded=datetime.now(UTC),
            action="R",
            outcome="0",
            agent=odd if n else "reko-fhir-worker",
            unit=None if n else "NULL",
            patients=(named, "Patient/p1") if n else (),
            content={"resourceType": "AuditEvent", "id": f"e{n}", "text": odd, "n": [n, None]},
        )
        for n in range(3)
    ]
    repo = await open_store(store_url, Subscription("ehr", frozenset()))
    try:
        async with repo.transaction() as conn:
            await audit.append(conn, entries, subscriptions=[])
        async with repo.transaction(writer=False) as conn:
            for entry in entries:
                assert await audit.read(conn, entry.id) == entry.content
            found = await audit.search(conn, patient=named)
            units = (await conn.execute(select(audit_event.c.unit, audit_event.c.agent))).all()
        assert sorted(e["id"] for e in found) == ["e1", "e2"]
        assert sorted(units, key=str) == sorted(
            [("NULL", "reko-fhir-worker"), (None, odd), (None, odd)], key=str
        )
    finally:
        await repo.close()
