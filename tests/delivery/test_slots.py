"""A target's slots: at most ``concurrency`` deliveries talk to it at a time, a patient's
messages still arrive in order, and a message that waited too long for a slot is left for the
next claim instead of being sent late (on SQLite and PostgreSQL).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from reko_fhir.delivery.retry import RetryPolicy
from reko_fhir.delivery.worker import Worker
from reko_fhir.store import SqlRepository, outbox, outbox_admin
from reko_fhir.store.outbox import Message, Subscription
from tests.delivery.test_outbox import open_store, patient, store_url  # noqa: F401 - fixture
from tests.writes import put

FAST = RetryPolicy(max_attempts=4, initial_wait=0.0, longest_wait=0.0, jitter=0.0)


class Slotted:
    """A target with slots, like FhirDelivery: counts how many deliveries overlap."""

    def __init__(self, concurrency: int, pause: float) -> None:
        self.name = "ehr"
        self.policy = FAST
        self.external_recipient: str | None = None
        self.concurrency = concurrency
        self.slots = asyncio.Semaphore(concurrency)
        self.pause = pause
        self.now = 0
        self.most = 0
        self.delivered: list[Message] = []

    async def deliver(
        self, message: Message, references: Mapping[str, str], logical: Mapping[str, Any]
    ) -> str:
        self.now += 1
        self.most = max(self.most, self.now)
        try:
            await asyncio.sleep(self.pause)
        finally:
            self.now -= 1
        self.delivered.append(message)
        return f"Patient/remote-{message.resource_id}"

    async def aclose(self) -> None:
        return None


async def pending(repo: SqlRepository) -> list[Message]:
    async with repo.transaction(writer=False) as conn:
        return await outbox_admin.messages(conn, status="pending", limit=100)


async def test_a_target_gets_at_most_its_concurrency_and_each_patient_in_order(
    store_url: str,  # noqa: F811 - the fixture
) -> None:
    repo = await open_store(store_url, Subscription("ehr", frozenset()))
    target = Slotted(concurrency=3, pause=0.02)
    try:
        for n in range(12):
            await put(repo, patient(n))
        for n in range(4):  # a second version of four patients, queued behind the first
            await repo.update({**patient(n), "active": False})
        stop = asyncio.Event()
        running = asyncio.create_task(Worker(repo, {"ehr": target}, batch=64).run(stop))
        async with asyncio.timeout(30):
            while len(target.delivered) < 16 or await pending(repo):
                await asyncio.sleep(0.05)
        stop.set()
        await running
        assert target.most == 3  # the slots were used, and never more than them
        order = [(m.resource_id, m.version) for m in target.delivered]
        assert sorted(order) == sorted(
            [(f"p{n}", 1) for n in range(12)] + [(f"p{n}", 2) for n in range(4)]
        )
        for n in range(4):
            assert order.index((f"p{n}", 1)) < order.index((f"p{n}", 2))
    finally:
        await repo.close()


async def test_a_message_that_waited_half_its_lease_for_a_slot_is_not_sent(
    store_url: str,  # noqa: F811 - the fixture
) -> None:
    repo = await open_store(store_url, Subscription("ehr", frozenset()))
    target = Slotted(concurrency=1, pause=0.3)
    try:
        for n in range(3):
            await put(repo, patient(n))
        worker = Worker(repo, {"ehr": target}, lease=timedelta(seconds=0.4))
        # All three are claimed; the first holds the only slot past half the lease (0.2 s).
        assert await worker.run_once() == 1
        assert [m.resource_id for m in target.delivered] == ["p0"]
        left = await pending(repo)
        assert sorted(m.resource_id for m in left) == ["p1", "p2"]
        assert all(m.attempts == 0 for m in left)  # not sent, so no attempt recorded
        await asyncio.sleep(0.4)  # their leases run out; the next claims take them
        target.pause = 0.0
        await worker.drain(timeout=30)
        assert sorted(m.resource_id for m in target.delivered) == ["p0", "p1", "p2"]
    finally:
        await repo.close()


async def test_a_targets_ids_are_remembered_and_corrected_by_one_upsert(
    store_url: str,  # noqa: F811 - the fixture
) -> None:
    """The references a target taught are kept, a changed id replaces the old one, and
    another target's names for the same resources are untouched."""
    repo = await open_store(store_url)
    try:
        async with repo.transaction() as conn:
            await outbox.remember_references(conn, "ehr", {"Patient/a": "Patient/1"})
            await outbox.remember_references(conn, "other", {"Patient/a": "Patient/x"})
        async with repo.transaction() as conn:
            await outbox.remember_references(
                conn, "ehr", {"Patient/a": "Patient/2", "Patient/b": "Patient/3"}
            )
        async with repo.transaction() as conn:
            ehr = await outbox.known_references(conn, "ehr", ["Patient/a", "Patient/b"])
            other = await outbox.known_references(conn, "other", ["Patient/a", "Patient/b"])
        assert ehr == {"Patient/a": "Patient/2", "Patient/b": "Patient/3"}
        assert other == {"Patient/a": "Patient/x"}
    finally:
        await repo.close()


async def test_a_turn_records_and_refills_two_slots_worth_at_a_time(
    store_url: str,  # noqa: F811 - the fixture
) -> None:
    """Four slots' worth claimed, refilled when half are free: a turn (a transaction) is
    paid by about two slots' worth of deliveries, not by each slot's worth."""
    repo = await open_store(store_url, Subscription("ehr", frozenset()))
    target = Slotted(concurrency=4, pause=0.01)
    try:
        for n in range(64):
            await put(repo, patient(n))
        worker = Worker(repo, {"ehr": target}, batch=64, linger=5.0)
        assert worker._limit("ehr") == (16, 8)
        recorded: list[int] = []
        turn = worker._turn

        async def counted(results: list[Any], wanted: Mapping[str, int]) -> Any:
            if results:
                recorded.append(len(results))
            return await turn(results, wanted)

        worker._turn = counted  # type: ignore[method-assign]
        stop = asyncio.Event()
        running = asyncio.create_task(worker.run(stop))
        async with asyncio.timeout(30):
            while len(target.delivered) < 64 or await pending(repo):
                await asyncio.sleep(0.05)
        stop.set()
        await running
        assert sum(recorded) == 64
        assert len(recorded) <= 64 // 8 + 1  # about 8 a turn (a slot's worth was 4)
    finally:
        await repo.close()
