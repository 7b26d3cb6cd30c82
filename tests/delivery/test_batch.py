"""Writes in one FHIR ``batch`` Bundle (https://hl7.org/fhir/R4/http.html#transaction): against
the fault-injecting target (a real process), each entry is the request it would be alone and is
judged alone; a failure of the whole request, or an answer that is no batch-response of as many
entries, is every write's. The configuration switch (``batch: N``) and Medplum's real batch."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from reko_fhir.delivery.config import TargetConfigError, load_targets
from reko_fhir.delivery.errors import DeliveryError, is_retryable
from reko_fhir.delivery.fhir import FhirTarget, PushResult, identifier_token
from reko_fhir.delivery.targets import FhirBatchDelivery, FhirDelivery, build_targets
from reko_fhir.delivery.worker import BatchTarget
from tests.peers.servers import Peer

Json = dict[str, Any]
SYSTEM = "urn:batch-test"


def patient(n: int, **more: Any) -> Json:
    return {"resourceType": "Patient", "identifier": [{"system": SYSTEM, "value": str(n)}], **more}


def force(peer: Peer, mode: str, count: int = 1, *, entry: bool = False) -> None:
    params = {"mode": mode, "count": str(count)} | ({"scope": "entry"} if entry else {})
    httpx.post(f"{peer.base_url}/_fault", params=params, timeout=5).raise_for_status()


def stats(peer: Peer) -> Json:
    answer: Json = httpx.get(f"{peer.base_url}/_stats", timeout=5).json()
    return answer


def log_of(peer: Peer) -> list[str]:
    requests: list[str] = httpx.get(f"{peer.base_url}/_log", timeout=5).json()["requests"]
    return requests


@pytest.fixture
async def target(fault_peer: Peer) -> AsyncIterator[FhirTarget]:
    async with httpx.AsyncClient(timeout=0.5) as client:  # below the peer's 1.5 s hang
        yield FhirTarget(client, fault_peer.base_url, name="faulty")


async def test_one_request_carries_each_write_as_it_would_go_alone(
    target: FhirTarget, fault_peer: Peer
) -> None:
    await target.push(patient(9))
    alone = log_of(fault_peer)[-1]
    writes = [target.upsert(patient(n, active=True)) for n in range(4)]
    writes.append(target.deletion("Patient", token=f"{SYSTEM}|9"))
    results = await target.push_batch(writes)
    assert all(isinstance(r, PushResult) for r in results), results
    done = [r for r in results if isinstance(r, PushResult)]
    assert [r.status for r in done] == [201, 201, 201, 201, 204]
    assert all(r.id and r.version_id == "1" for r in done[:4])  # from location and etag
    log = log_of(fault_peer)
    assert log[1] == "POST / (batch of 5)"  # one HTTP request ...
    assert log[2:] == [alone.replace("%7C9", f"%7C{n}") for n in range(4)] + [
        alone.replace("PUT", "DELETE")
    ]  # ... and each entry the request it would be alone
    after = stats(fault_peer)
    assert (after["requests"], after["batches"], after["entries"]) == (2, 1, 5)
    assert (after["distinct"], after["resources"]) == (4, 4)
    again = await target.push_batch(writes[:4])  # sent again: changes nothing
    assert [r.status for r in again if isinstance(r, PushResult)] == [200] * 4
    assert (stats(fault_peer)["resources"], stats(fault_peer)["duplicates"]) == (4, [])


async def test_each_entry_is_judged_alone(target: FhirTarget, fault_peer: Peer) -> None:
    await target.push(patient(5, active=True))
    for mode in ("none", "422", "503", "412", "412"):
        force(fault_peer, mode, entry=True)
    results = await target.push_batch([target.upsert(patient(n, active=True)) for n in range(1, 6)])
    delivered, refused, busy, conflict, same = results
    assert isinstance(delivered, PushResult)
    assert delivered.status == 201
    assert isinstance(refused, DeliveryError)
    assert refused.status == 422
    assert not is_retryable(refused)
    assert refused.outcome is not None
    assert "injected 422 (entry)" in str(refused)
    assert isinstance(busy, DeliveryError)
    assert busy.status == 503
    assert is_retryable(busy)
    # A 412 is reconciled as it would be alone: nothing there to compare with is final ...
    assert isinstance(conflict, DeliveryError)
    assert conflict.kind == "conflict"
    assert not is_retryable(conflict)
    # ... and the same content already there is a success.
    assert isinstance(same, PushResult)
    assert same.reconciled
    assert stats(fault_peer)["distinct"] == 2  # patient 1, and patient 5 from before


@pytest.mark.parametrize(
    ("mode", "stored"),
    [("503", False), ("timeout", False), ("500-after", True), ("reset-after", True)],
)
async def test_a_failed_request_fails_every_write_and_a_resend_duplicates_nothing(
    target: FhirTarget, fault_peer: Peer, mode: str, stored: bool
) -> None:
    writes = [target.upsert(patient(n)) for n in range(3)]
    force(fault_peer, mode)
    with pytest.raises((DeliveryError, httpx.TransportError)) as failed:
        await target.push_batch(writes)
    assert is_retryable(failed.value)
    assert stats(fault_peer)["writes"] == (3 if stored else 0)
    again = await target.push_batch(writes)
    assert [r.status for r in again if isinstance(r, PushResult)] == [200 if stored else 201] * 3
    after = stats(fault_peer)
    assert (after["distinct"], after["resources"], after["duplicates"]) == (3, 3, [])


def answering(body: Json, status: int = 200) -> httpx.AsyncClient:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, json=body)

    return httpx.AsyncClient(transport=httpx.MockTransport(answer))


OK_ENTRY = {"response": {"status": "200 OK", "location": "Patient/a/_history/2"}}


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"resourceType": "OperationOutcome", "issue": []}, "no batch-response Bundle"),
        ({"resourceType": "Bundle", "type": "transaction-response"}, "no batch-response Bundle"),
        ({"resourceType": "Bundle", "type": "batch-response", "entry": [OK_ENTRY]}, "1 entries"),
    ],
)
async def test_an_answer_that_is_no_batch_response_of_as_many_entries_fails_them_all(
    body: Json, says: str
) -> None:
    async with answering(body) as client:
        target = FhirTarget(client, "http://ehr.test/fhir", name="ehr")
        with pytest.raises(DeliveryError, match=says) as failed:
            await target.push_batch([target.upsert(patient(1)), target.upsert(patient(2))])
    assert not is_retryable(failed.value)


async def test_entries_read_as_servers_write_them() -> None:
    """Status as ``201`` or ``201 Created``; id and version from location and etag, or from
    the resource; a refusal's OperationOutcome in ``response.outcome`` or in ``resource``."""
    outcome = {"resourceType": "OperationOutcome", "issue": [{"diagnostics": "nope"}]}
    entries = [
        {"response": {"status": "201", "location": "http://ehr.test/fhir/Patient/a/_history/1"}},
        {"response": {"status": "200 OK"}, "resource": patient(2, id="b", meta={"versionId": "7"})},
        {"response": {"status": "422 Unprocessable", "outcome": outcome}},
        {"response": {"status": "400"}, "resource": outcome},
    ]
    async with answering(
        {"resourceType": "Bundle", "type": "batch-response", "entry": entries}
    ) as c:
        target = FhirTarget(c, "http://ehr.test/fhir", name="ehr")
        a, b, refused, bad = await target.push_batch([target.upsert(patient(n)) for n in range(4)])
    assert isinstance(a, PushResult)
    assert (a.status, a.id, a.version_id) == (201, "a", "1")
    assert isinstance(b, PushResult)
    assert (b.status, b.id, b.version_id) == (200, "b", "7")
    assert isinstance(refused, DeliveryError)
    assert "nope" in str(refused)
    assert isinstance(bad, DeliveryError)
    assert bad.status == 400
    assert bad.outcome == outcome


def test_batch_is_switched_on_per_target_and_counted_in_entries() -> None:
    configs = load_targets(
        None,
        '[{"name": "plain", "base_url": "http://a.test"},'
        ' {"name": "batched", "base_url": "http://b.test", "batch": 50, "concurrency": 4}]',
    )
    targets = build_targets(configs)
    plain, batched = targets["plain"], targets["batched"]
    assert isinstance(plain, FhirDelivery)
    assert not isinstance(plain, BatchTarget)
    assert isinstance(batched, FhirBatchDelivery)
    assert isinstance(batched, BatchTarget)
    assert (batched.batch_size, batched.concurrency, batched.discloses) == (50, 4, True)
    with pytest.raises(TargetConfigError, match="batch"):
        load_targets(None, '[{"name": "one", "base_url": "http://a.test", "batch": 1}]')


async def test_medplum_takes_a_batch_of_conditional_updates_and_a_delete(
    medplum_peer: Peer, http: httpx.AsyncClient
) -> None:
    """The real thing: Medplum's router answers each entry, ids and versions read from it."""
    target = FhirTarget(http, medplum_peer.base_url, name="medplum")
    gone = patient(90, active=True)
    await target.push(gone)
    token = identifier_token(gone)
    assert token is not None
    writes = [target.upsert(patient(n, active=True)) for n in range(91, 94)]
    writes.append(target.deletion("Patient", token=token))
    first = await target.push_batch(writes)
    second = await target.push_batch(writes[:3])
    assert all(isinstance(r, PushResult) for r in first + second), first + second
    made = [r for r in first if isinstance(r, PushResult)]
    assert [r.status for r in made[:3]] == [201] * 3
    assert made[3].status in (200, 204)
    assert all(r.id and r.version_id for r in made[:3])
    again = [r for r in second if isinstance(r, PushResult)]
    assert [r.id for r in again] == [r.id for r in made[:3]]  # updated, not created again
    for n in range(91, 94):
        held = await target.pull("Patient", since=None, params={"identifier": f"{SYSTEM}|{n}"})
        assert len(held) == 1
    assert await target.pull("Patient", since=None, params={"identifier": token}) == []
