"""The worker delivering to a FHIR target in ``batch`` Bundles (``batch: N`` in the targets
file), on SQLite and PostgreSQL, against the fault-injecting target as a real process: each
message's own outcome recorded (delivered, retried alone, dead with the entry's
OperationOutcome), a failed request retried whole without duplicates, each patient's order
kept under random faults, several batches in flight up to the target's ``concurrency``."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from reko_fhir.delivery.config import load_targets
from reko_fhir.delivery.retry import RetryPolicy
from reko_fhir.delivery.targets import build_targets
from reko_fhir.delivery.worker import Delivered, Outgoing, Target, Worker
from reko_fhir.store import SqlRepository, audit, outbox_admin
from reko_fhir.store.outbox import Message, Subscription
from tests.delivery.test_outbox import open_store, store_url  # noqa: F401 - fixture
from tests.peers.servers import Peer, fault_target
from tests.writes import put

SYSTEM = "urn:batch-worker"
FAST = {"max_attempts": 200, "initial_wait": 0.0, "longest_wait": 0.0, "jitter": 0.0}


def patient(n: int, version: int = 1) -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "id": f"p{n}",
        "identifier": [{"system": SYSTEM, "value": f"P{n:03d}"}],
        "name": [{"text": f"v{version}"}],
    }


def batch_target(base: str, *, batch: int = 10, concurrency: int = 2) -> dict[str, Target]:
    config = {"name": "faulty", "base_url": base, "timeout": 0.5, "retry": FAST}
    config |= {"batch": batch, "concurrency": concurrency}
    return build_targets(load_targets(None, json.dumps([config])))


def force(peer: Peer, mode: str, *, entry: bool = False) -> None:
    params = {"mode": mode} | ({"scope": "entry"} if entry else {})
    httpx.post(f"{peer.base_url}/_fault", params=params, timeout=5).raise_for_status()


def stats(peer: Peer) -> dict[str, Any]:
    answer: dict[str, Any] = httpx.get(f"{peer.base_url}/_stats", timeout=5).json()
    return answer


def batches_in(peer: Peer) -> list[list[str]]:
    """The entries of each batch the target received, as its log shows them."""
    log = httpx.get(f"{peer.base_url}/_log", timeout=5).json()["requests"]
    return [
        log[n + 1 : n + 1 + int(line.split()[-1].rstrip(")"))]
        for n, line in enumerate(log)
        if line.startswith("POST / (batch of ")
    ]


async def messages(repo: SqlRepository) -> dict[str, Message]:
    async with repo.transaction(writer=False) as conn:
        found = await outbox_admin.messages(conn, limit=10_000)
    return {m.resource_id: m for m in found}


async def drained(repo: SqlRepository, targets: Mapping[str, Target]) -> None:
    worker = Worker(repo, targets)
    try:
        await worker.drain(timeout=90)
    finally:
        for target in targets.values():
            await target.aclose()


async def test_each_message_gets_its_own_entrys_outcome(
    store_url: str,  # noqa: F811 - the fixture
    fault_peer: Peer,
) -> None:
    repo = await open_store(store_url, Subscription("faulty", frozenset()))
    try:
        for n in range(6):
            await put(repo, patient(n))
        for mode in ("none", "422", "503", "412"):  # entries in the order claimed: p0, p1, ...
            force(fault_peer, mode, entry=True)
        await drained(repo, batch_target(fault_peer.base_url))
        held = await messages(repo)
        assert {k: m.status for k, m in held.items()} == {
            "p0": "delivered",
            "p1": "dead",  # 422: final, with the entry's OperationOutcome as the reason
            "p2": "delivered",  # 503: retried, alone
            "p3": "dead",  # 412 and nothing there to reconcile with: a conflict
            "p4": "delivered",
            "p5": "delivered",
        }
        assert held["p1"].dead_reason == "rejected"
        assert "HTTP 422 — injected 422 (entry)" in str(held["p1"].last_error)
        assert "HTTP 412 and 0 resources match" in str(held["p3"].last_error)
        assert (held["p0"].attempts, held["p2"].attempts) == (1, 2)
        first, *rest = batches_in(fault_peer)
        assert len(first) == 6  # one request for all six
        assert rest == []  # the retry went alone, as a plain request
        after = stats(fault_peer)
        assert (after["distinct"], after["resources"], after["duplicates"]) == (4, 4, [])
        # Each final outcome is a disclosure (or an attempt) in the access log, as when alone.
        async with repo.transaction(writer=False) as conn:
            for n, outcome in ((0, "0"), (1, "4")):
                events = await audit.search(conn, patient=f"Patient/p{n}", count=100)
                exports = [e for e in events if e["subtype"][0]["code"] == "110106"]
                assert [e["outcome"] for e in exports] == [outcome]
    finally:
        await repo.close()


async def test_a_failed_batch_is_retried_whole_and_nothing_is_duplicated(
    store_url: str,  # noqa: F811 - the fixture
    fault_peer: Peer,
) -> None:
    repo = await open_store(store_url, Subscription("faulty", frozenset()))
    try:
        for n in range(20):
            await put(repo, patient(n))
        for mode in ("500-after", "reset-after", "timeout-after", "503"):
            force(fault_peer, mode)  # the first four requests, each after (or before) writing
        await drained(repo, batch_target(fault_peer.base_url, batch=10, concurrency=2))
        held = await messages(repo)
        assert {m.status for m in held.values()} == {"delivered"}
        assert all(m.attempts >= 2 for m in held.values())  # every batch failed at least once
        after = stats(fault_peer)
        assert (after["distinct"], after["resources"], after["duplicates"]) == (20, 20, [])
        assert max(after["per_identifier"].values()) >= 2  # written, then written again
        assert {"500-after", "reset-after", "timeout-after", "503"} <= set(after["faults"])
    finally:
        await repo.close()


async def test_each_patients_order_is_kept_under_random_faults(
    store_url: str,  # noqa: F811 - the fixture
) -> None:
    repo = await open_store(store_url, Subscription("faulty", frozenset()))
    try:
        for n in range(12):
            await put(repo, patient(n, 1))
        for version in (2, 3):
            for n in range(12):
                await repo.update(patient(n, version))
        with fault_target(0.3, seed=4, hang_seconds=1.0) as peer:
            await drained(repo, batch_target(peer.base_url, batch=5, concurrency=3))
            after = stats(peer)
            force(peer, "none")  # the read below is a data request: let it through
            held = httpx.get(f"{peer.base_url}/Patient", timeout=5).json()["entry"]
            batches = batches_in(peer)
        assert after["faults"]
        assert any(k.startswith("entry:") for k in after["faults"])
        assert (after["distinct"], after["resources"], after["duplicates"]) == (12, 12, [])
        # The last version of each patient is what the target holds: none overtook another.
        assert sorted(e["resource"]["name"][0]["text"] for e in held) == ["v3"] * 12
        assert max(len(b) for b in batches) > 1
        for entries in batches:
            assert len(set(entries)) == len(entries)  # never two of one patient in a batch
        assert {m.status for m in (await messages(repo)).values()} == {"delivered"}
    finally:
        await repo.close()


class Overlapping:
    """A batch target that counts how many of its batches are in flight at once."""

    def __init__(self, concurrency: int) -> None:
        self.name = "ehr"
        self.policy = RetryPolicy(max_attempts=2, initial_wait=0.0, longest_wait=0.0)
        self.external_recipient: str | None = None
        self.batch_size = 2
        self.discloses = True
        self.concurrency = concurrency
        self.now = self.most = 0
        self.batches: list[list[str]] = []

    async def deliver(self, message: Message, references: Any, logical: Any) -> None:
        raise AssertionError("a batch target gets batches")

    async def deliver_batch(self, batch: Sequence[Outgoing]) -> list[Delivered]:
        self.now += 1
        self.most = max(self.most, self.now)
        await asyncio.sleep(0.05)
        self.now -= 1
        self.batches.append([item.message.ordering_key for item in batch])
        return [Delivered(f"Patient/r-{i.message.resource_id}", 201) for i in batch]

    async def aclose(self) -> None:
        return None


async def test_up_to_concurrency_batches_are_in_flight(
    store_url: str,  # noqa: F811 - the fixture
) -> None:
    repo = await open_store(store_url, Subscription("ehr", frozenset()))
    target = Overlapping(concurrency=3)
    try:
        for n in range(12):
            await put(repo, patient(n))
        stop = asyncio.Event()
        running = asyncio.create_task(Worker(repo, {"ehr": target}).run(stop))
        async with asyncio.timeout(30):
            while sum(len(b) for b in target.batches) < 12:
                await asyncio.sleep(0.02)
        stop.set()
        await running
        assert target.most == 3
        assert all(len(b) <= 2 for b in target.batches)
        assert {m.status for m in (await messages(repo)).values()} == {"delivered"}
    finally:
        await repo.close()
