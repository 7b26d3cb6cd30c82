"""The fault-injecting target (tests/peers/fault_target.py, a real process) really fails in
each way it claims, and FhirTarget turns each failure into the right kind of error: retryable
for 5xx/429/timeouts/resets/refusals, final for 400/422, reconciled for 412.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from reko_fhir.delivery.errors import DeliveryError, is_retryable
from reko_fhir.delivery.fhir import FhirTarget
from tests.peers.fault_target import FAULTS
from tests.peers.servers import Peer, fault_target

Json = dict[str, Any]
SYSTEM = "urn:fault-test"
CLIENT_TIMEOUT = 0.5  # below the peer's 1.5 s hang, above its 0.15 s pauses in a slow body


def patient(n: int, **more: Any) -> Json:
    return {"resourceType": "Patient", "identifier": [{"system": SYSTEM, "value": str(n)}], **more}


def key(n: int) -> str:
    return f"Patient?{SYSTEM}|{n}"


def force(peer: Peer, mode: str, count: int = 1) -> None:
    params = {"mode": mode, "count": str(count)}
    httpx.post(f"{peer.base_url}/_fault", params=params, timeout=5).raise_for_status()


def stats(peer: Peer) -> Json:
    answer: Json = httpx.get(f"{peer.base_url}/_stats", timeout=5).json()
    return answer


@pytest.fixture
async def target(fault_peer: Peer) -> AsyncIterator[FhirTarget]:
    async with httpx.AsyncClient(timeout=CLIENT_TIMEOUT) as client:
        yield FhirTarget(client, fault_peer.base_url, name="faulty")


@pytest.mark.parametrize(("mode", "status"), [("500", 500), ("503", 503), ("429", 429)])
async def test_error_answers_are_retryable_and_store_nothing(
    target: FhirTarget, fault_peer: Peer, mode: str, status: int
) -> None:
    force(fault_peer, mode)
    with pytest.raises(DeliveryError) as failed:
        await target.push(patient(1))
    assert failed.value.status == status
    assert is_retryable(failed.value)
    assert failed.value.retry_after == (1.0 if mode == "429" else None)
    assert stats(fault_peer)["writes"] == 0
    assert (await target.push(patient(1))).status == 201
    assert stats(fault_peer)["faults"] == {mode: 1}


@pytest.mark.parametrize(
    ("mode", "stored"),
    [("timeout", False), ("reset", False), ("timeout-after", True), ("reset-after", True)],
)
async def test_transport_faults_are_retryable_and_redelivery_never_duplicates(
    target: FhirTarget, fault_peer: Peer, mode: str, stored: bool
) -> None:
    force(fault_peer, mode)
    started = time.monotonic()
    with pytest.raises(httpx.TransportError) as failed:
        await target.push(patient(2))
    assert is_retryable(failed.value)
    if mode.startswith("timeout"):
        assert isinstance(failed.value, httpx.TimeoutException)
        assert time.monotonic() - started >= CLIENT_TIMEOUT * 0.9
    assert stats(fault_peer)["writes"] == (1 if stored else 0)
    again = await target.push(patient(2))
    assert again.status == (200 if stored else 201)  # the lost write had landed, or not
    after = stats(fault_peer)
    assert (after["distinct"], after["resources"], after["duplicates"]) == (1, 1, [])
    assert after["per_identifier"] == {key(2): 2 if stored else 1}


async def test_500_after_the_write_is_retryable_and_the_write_stays(
    target: FhirTarget, fault_peer: Peer
) -> None:
    force(fault_peer, "500-after")
    with pytest.raises(DeliveryError) as failed:
        await target.push(patient(3))
    assert failed.value.status == 500
    assert is_retryable(failed.value)
    assert stats(fault_peer)["writes"] == 1
    assert (await target.push(patient(3))).status == 200
    assert stats(fault_peer)["resources"] == 1


async def test_a_slow_body_arrives_slowly_but_whole(target: FhirTarget, fault_peer: Peer) -> None:
    force(fault_peer, "slow-body")
    started = time.monotonic()
    result = await target.push(patient(4, active=True))
    assert time.monotonic() - started >= 0.5  # four pauses of 0.15 s
    assert (result.status, result.version_id) == (201, "1")


@pytest.mark.parametrize("mode", ["400", "422"])
async def test_refusals_are_final(target: FhirTarget, fault_peer: Peer, mode: str) -> None:
    force(fault_peer, mode)
    with pytest.raises(DeliveryError) as failed:
        await target.push(patient(5))
    assert failed.value.status == int(mode)
    assert not is_retryable(failed.value)
    assert failed.value.outcome is not None


async def test_a_body_the_target_cannot_take_is_a_final_400(target: FhirTarget) -> None:
    with pytest.raises(DeliveryError) as failed:
        await target.push({"resourceType": "Patient", "id": "no such id!"})
    assert failed.value.status == 400
    assert not is_retryable(failed.value)


async def test_412_with_the_same_content_already_there_is_a_success(
    target: FhirTarget, fault_peer: Peer
) -> None:
    await target.push(patient(6, active=True))
    force(fault_peer, "412")
    result = await target.push(patient(6, active=True))
    assert result.reconciled
    assert result.status == 200
    assert stats(fault_peer)["writes"] == 1  # nothing written again


async def test_412_with_other_content_overwrites_once_with_if_match(
    target: FhirTarget, fault_peer: Peer, http: httpx.AsyncClient
) -> None:
    first = await target.push(patient(7, active=True))
    force(fault_peer, "412")
    result = await target.push(patient(7, active=False))
    assert result.reconciled
    assert (result.id, result.version_id) == (first.id, "2")
    held = (await http.get(f"{fault_peer.base_url}/Patient/{first.id}")).json()
    assert held["active"] is False
    # A second 412 on the If-Match write (someone else won again) is a final conflict.
    force(fault_peer, "412")
    force(fault_peer, "none")  # the re-read goes through
    force(fault_peer, "412")
    with pytest.raises(DeliveryError) as conflict:
        await target.push(patient(7, active=True))
    assert conflict.value.status == 412
    assert conflict.value.kind == "conflict"
    assert not is_retryable(conflict.value)
    assert stats(fault_peer)["writes"] == 2


async def test_a_naive_create_after_a_lost_answer_duplicates(
    fault_peer: Peer, http: httpx.AsyncClient
) -> None:
    """Why the target must be idempotent: the same redelivery by plain POST leaves two."""
    force(fault_peer, "reset-after")
    with pytest.raises(httpx.TransportError):
        await http.post(f"{fault_peer.base_url}/Patient", json=patient(8))
    (await http.post(f"{fault_peer.base_url}/Patient", json=patient(8))).raise_for_status()
    after = stats(fault_peer)
    assert (after["resources"], after["distinct"], after["duplicates"]) == (2, 1, [key(8)])


async def test_down_refuses_connections_then_comes_back(
    target: FhirTarget, fault_peer: Peer
) -> None:
    await target.push(patient(9))  # a pooled keep-alive connection exists now
    httpx.post(f"{fault_peer.base_url}/_down", params={"seconds": "1"}).raise_for_status()
    await asyncio.sleep(0.2)
    with pytest.raises(httpx.ConnectError) as refused:
        await target.push(patient(10))
    assert is_retryable(refused.value)
    await asyncio.sleep(1.2)
    assert (await target.push(patient(10))).status == 201


async def test_down_with_503_answers_but_stores_nothing(
    target: FhirTarget, fault_peer: Peer
) -> None:
    params = {"seconds": "1", "mode": "503"}
    httpx.post(f"{fault_peer.base_url}/_down", params=params).raise_for_status()
    with pytest.raises(DeliveryError) as failed:
        await target.push(patient(11))
    assert failed.value.status == 503
    assert is_retryable(failed.value)
    assert stats(fault_peer)["writes"] == 0  # the control API still answers
    await asyncio.sleep(1.1)
    assert (await target.push(patient(11))).status == 201


async def test_reset_forgets_everything(target: FhirTarget, fault_peer: Peer) -> None:
    await target.push(patient(12))
    force(fault_peer, "500", count=3)
    httpx.post(f"{fault_peer.base_url}/_reset").raise_for_status()
    assert stats(fault_peer) == {
        "distinct": 0,
        "resources": 0,
        "writes": 0,
        "per_identifier": {},
        "duplicates": [],
        "faults": {},
        "requests": 0,
        "batches": 0,
        "entries": 0,
    }
    assert (await target.push(patient(12))).status == 201  # no forced fault left


async def test_random_faults_of_every_kind_and_no_duplicates_with_retries() -> None:
    with fault_target(0.5, seed=5, hang_seconds=0.6, slow_seconds=0.05) as peer:
        async with httpx.AsyncClient(timeout=0.3) as client:
            target = FhirTarget(client, peer.base_url, name="random")
            failures: list[Exception] = []
            for n in range(60):
                for _attempt in range(40):
                    try:
                        await target.push(patient(n))
                        break
                    except (DeliveryError, httpx.TransportError) as exc:
                        failures.append(exc)
                else:
                    pytest.fail(f"patient {n} never got through")
        after = stats(peer)
    assert failures
    assert [f for f in failures if not is_retryable(f)] == []
    assert set(after["faults"]) == set(FAULTS)
    assert (after["distinct"], after["resources"], after["duplicates"]) == (60, 60, [])
    # Faults after the write made some deliveries land twice: harmless only because idempotent.
    assert after["writes"] > 60
