"""The outbox and its worker on SQLite and PostgreSQL: same-transaction enqueue, order per
patient, retry by policy, dead letters (with every attempt), replay, purge, the consent gate.

The targets here are small scripted recorders: what is under test is the outbox's semantics.
The real peers (Medplum, the fault-injecting target, killed workers) are in the other files.
"""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import AsyncIterator, Callable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from reko_fhir.delivery.errors import DeliveryError
from reko_fhir.delivery.retry import RetryPolicy
from reko_fhir.delivery.worker import Worker
from reko_fhir.rest.messages import FhirRequest
from reko_fhir.rest.router import FhirRouter
from reko_fhir.store import Search, SqlRepository, audit, outbox_admin, outbox_delivery
from reko_fhir.store.outbox import Message, Subscription
from reko_fhir.validation.service import ValidationService, reko_definitions
from tests.golden import FIXTURES
from tests.store.conftest import postgres_schema
from tests.writes import put, put_in

FAST = RetryPolicy(max_attempts=4, initial_wait=0.0, longest_wait=0.0, jitter=0.0)


class Recorder:
    """A target that records deliveries; ``script`` may raise for a message."""

    def __init__(
        self,
        name: str,
        *,
        external_recipient: str | None = None,
        script: Callable[[Message], None] | None = None,
        policy: RetryPolicy = FAST,
    ) -> None:
        self.name = name
        self.external_recipient = external_recipient
        self.policy = policy
        self.script = script
        self.delivered: list[Message] = []
        self.references: list[dict[str, str]] = []

    async def deliver(
        self, message: Message, references: Mapping[str, str], logical: Mapping[str, Any]
    ) -> str | None:
        if self.script is not None:
            self.script(message)
        self.delivered.append(message)
        self.references.append(dict(references))
        return f"{message.resource_type}/remote-{message.resource_id}"

    async def aclose(self) -> None:
        return None


@pytest.fixture(params=["sqlite", "postgresql"])
async def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'store.sqlite3'}"
        return
    async with postgres_schema() as url:
        yield url.replace("postgresql://", "postgresql+psycopg://", 1)


async def open_store(url: str, *subscriptions: Subscription) -> SqlRepository:
    return await SqlRepository.open(url, subscriptions=subscriptions)


def patient(number: int) -> dict[str, object]:
    return {"resourceType": "Patient", "id": f"p{number}", "active": True}


async def test_a_write_and_its_messages_commit_or_vanish_together(store_url: str) -> None:
    repo = await open_store(
        store_url,
        Subscription("ehr", frozenset({"Patient"})),
        Subscription("archive", frozenset()),  # every type
        Subscription("plans", frozenset({"CarePlan"})),
    )
    try:

        async def write_then_fail() -> None:
            async with repo.unit() as unit:
                await put_in(unit, patient(1))
                raise RuntimeError("the request failed after the write")

        with pytest.raises(RuntimeError):
            await write_then_fail()
        assert (await repo.row_counts())["outbox_message"] == 0
        await put(repo, patient(2))
        async with repo.transaction() as conn:
            queued = await outbox_admin.messages(conn)
        assert sorted((m.target, m.ordering_key, m.version) for m in queued) == [
            ("archive", "Patient/p2", 1),
            ("ehr", "Patient/p2", 1),
        ]
        assert queued[0].payload is not None
        assert queued[0].payload["id"] == "p2"
        await repo.delete("Patient", "p2")
        async with repo.transaction() as conn:
            deletions = [m for m in await outbox_admin.messages(conn) if m.operation == "delete"]
        # Each carries what it removed: the target deletes by its identifier.
        assert {(m.target, m.version, (m.payload or {}).get("id")) for m in deletions} == {
            ("archive", 2, "p2"),
            ("ehr", 2, "p2"),
        }
    finally:
        await repo.close()


async def test_retryable_failures_are_retried_and_final_ones_become_dead_letters(
    store_url: str,
) -> None:
    repo = await open_store(store_url, Subscription("ehr", frozenset({"Patient"})))
    failures = {"p1": 2}

    def script(message: Message) -> None:
        if message.resource_id == "p3":
            raise DeliveryError("HTTP 422: the target refused", status=422)
        if failures.get(message.resource_id, 0) > 0:
            failures[message.resource_id] -= 1
            raise DeliveryError("HTTP 503", status=503, retry_after=0)

    target = Recorder("ehr", script=script)
    try:
        for n in (1, 2, 3):
            await put(repo, patient(n))
        await Worker(repo, {"ehr": target}).drain(timeout=30)
        assert sorted(m.resource_id for m in target.delivered) == ["p1", "p2"]
        async with repo.transaction() as conn:
            dead = await outbox_admin.messages(conn, status="dead")
            assert [(m.resource_id, m.dead_reason) for m in dead] == [("p3", "rejected")]
            shown = await outbox_admin.message(
                conn, next(m.id for m in await outbox_admin.messages(conn))
            )
        assert shown is not None
        first, attempts = shown
        assert first.resource_id == "p1"
        assert [(a.result, a.status) for a in attempts] == [
            ("retry", 503),
            ("retry", 503),
            ("delivered", None),
        ]
        assert attempts[0].reason is not None
        assert "HTTP 503" in attempts[0].reason

        # Edit and replay: the corrected payload is what reaches the target.
        target.script = None
        fixed = {**patient(3), "active": False}
        async with repo.transaction() as conn:
            assert await outbox_admin.replay(conn, message_id=dead[0].id, payload=fixed) == 1
        await Worker(repo, {"ehr": target}).drain(timeout=30)
        assert target.delivered[-1].payload == fixed
        async with repo.transaction() as conn:
            assert await outbox_admin.messages(conn, status="dead") == []
            later = datetime.now(UTC) + timedelta(seconds=1)
            assert await outbox_admin.purge(conn, status="delivered", older_than=later) == 3
        rows = await repo.row_counts()
        assert rows["outbox_message"] == 0
        assert rows["outbox_attempt"] == 0
    finally:
        await repo.close()


async def test_attempts_are_capped_then_the_message_is_a_dead_letter(store_url: str) -> None:
    repo = await open_store(store_url, Subscription("ehr", frozenset()))

    def down(message: Message) -> None:
        raise DeliveryError("HTTP 500", status=500)

    try:
        await put(repo, patient(1))
        await Worker(repo, {"ehr": Recorder("ehr", script=down)}).drain(timeout=30)
        async with repo.transaction() as conn:
            (dead,) = await outbox_admin.messages(conn, status="dead")
        assert (dead.attempts, dead.dead_reason) == (FAST.max_attempts, "gave-up")
    finally:
        await repo.close()


async def test_a_patients_messages_arrive_in_order_even_when_the_first_is_retried(
    store_url: str,
) -> None:
    repo = await open_store(store_url, Subscription("ehr", frozenset()))
    first_try = {"v1": True}

    def script(message: Message) -> None:
        if message.version == 1 and first_try.pop("v1", False):
            raise DeliveryError("HTTP 503", status=503)

    target = Recorder("ehr", script=script)
    try:
        await put(repo, patient(1))
        await repo.update({**patient(1), "active": False})
        await put(repo, patient(2))
        await Worker(repo, {"ehr": target}).drain(timeout=30)
        order = [(m.resource_id, m.version) for m in target.delivered]
        assert order.index(("p1", 1)) < order.index(("p1", 2))
        assert sorted(order) == [("p1", 1), ("p1", 2), ("p2", 1)]
    finally:
        await repo.close()


async def test_a_lease_left_by_a_dead_worker_expires_and_the_message_is_delivered(
    store_url: str,
) -> None:
    repo = await open_store(store_url, Subscription("ehr", frozenset()))
    target = Recorder("ehr")
    try:
        await put(repo, patient(1))
        async with repo.transaction() as conn:
            (claimed,) = await outbox_delivery.claim(
                conn, worker="crashed", limit=10, lease=timedelta(milliseconds=300)
            )
        assert await Worker(repo, {"ehr": target}).run_once() == 0  # still leased
        await asyncio.sleep(0.4)
        await Worker(repo, {"ehr": target}).drain(timeout=30)
        assert [m.id for m in target.delivered] == [claimed.id]
    finally:
        await repo.close()


async def test_consent_revoked_after_enqueueing_blocks_the_disclosure(store_url: str) -> None:
    """The employer is covered when the Procedure is accepted; revoked before it is sent."""
    repo = await open_store(store_url, Subscription("employer-portal", frozenset({"Procedure"})))
    router = FhirRouter(repo, ValidationService(reko_definitions()))
    bundle = json.loads((FIXTURES / "mapping" / "a-primary-care" / "expected.json").read_text())
    try:
        answer = await router.handle(FhirRequest("POST", "/"), bundle)
        assert answer.status == 200, answer.resource
        (employer,) = await repo.search(
            "Organization", Search((("identifier", "urn:oid:2.5.4.97|5566778899"),))
        )
        gate = f"Organization/{employer.id}"
        open_target = Recorder("employer-portal", external_recipient=gate)
        await Worker(repo, {"employer-portal": open_target}).drain(timeout=60)
        assert open_target.delivered  # consent in force: released

        (consent,) = await repo.search("Consent", Search())
        procedure = (await repo.search("Procedure", Search(count=1)))[0].resource
        again = {k: v for k, v in copy.deepcopy(procedure).items() if k != "meta"}
        again["status"] = "completed"
        again["note"] = [{"text": "uppföljning"}]
        await repo.update(again)  # enqueued while the consent is still in force
        revoked = copy.deepcopy(consent.resource)
        revoked["status"] = "inactive"
        revoked["provision"]["period"]["end"] = "2025-06-30"
        await repo.update(revoked)

        blocked_target = Recorder("employer-portal", external_recipient=gate)
        await Worker(repo, {"employer-portal": blocked_target}).drain(timeout=60)
        assert blocked_target.delivered == []
        async with repo.transaction() as conn:
            (dead,) = await outbox_admin.messages(conn, status="dead")
            shown = await outbox_admin.message(conn, dead.id)
        assert dead.dead_reason == "consent"
        assert dead.resource_id == procedure["id"]
        assert shown is not None
        assert "no consent of the patient covers disclosure to Byggvaror Norr AB" in str(
            shown[1][-1].reason
        )
        # Audited: the access log holds the blocked disclosure (outcome 4) beside the ones sent.
        patient = procedure["subject"]["reference"]
        async with repo.transaction(writer=False) as conn:
            events = await audit.search(conn, patient=patient, count=1000)
        exports = [e for e in events if e["subtype"][0]["code"] == "110106"]
        blocked = [e for e in exports if e["outcome"] == "4"]
        assert len(blocked) == 1
        assert f"Procedure/{procedure['id']}" in json.dumps(blocked[0]["entity"])
        assert len(exports) == len(open_target.delivered) + 1
    finally:
        await repo.close()
