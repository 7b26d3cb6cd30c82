"""FhirTarget against a real FHIR server: Medplum's router (npm @medplum/fhir-router 4.5.2) over
its in-memory repository, as a process on loopback (tests/peers/medplum_server.mjs).

Every resource our mapping produces (fixtures/mapping/*/expected.json) is delivered, read back
unchanged, and delivered again without a duplicate.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from reko_fhir.delivery.errors import DeliveryError, is_retryable
from reko_fhir.delivery.fhir import FhirTarget, identifier_token, same_content
from tests.golden import FIXTURES
from tests.peers import servers
from tests.peers.servers import Peer, medplum

Json = dict[str, Any]
CASES = sorted(p.parent.name for p in (FIXTURES / "mapping").glob("*/expected.json"))
MEDPLUM_TRANSACTION_LIMIT = 8  # entries with conditional requests it accepts in one transaction


def bundle_of(case: str) -> Json:
    data: Json = json.loads(Path(FIXTURES / "mapping" / case / "expected.json").read_text("utf-8"))
    return data


def without_meta(resource: Json) -> Json:
    return {k: v for k, v in resource.items() if k not in ("meta", "id")}


def rewrite_references(value: Any, resolved: dict[str, str]) -> Any:
    """The resource as the server should hold it: ``urn:uuid`` references resolved."""
    if isinstance(value, dict):
        return {
            k: resolved.get(v, v) if isinstance(v, str) else rewrite_references(v, resolved)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [rewrite_references(v, resolved) for v in value]
    return value


async def count(target: FhirTarget, resource: Json) -> int:
    kind, token = resource["resourceType"], identifier_token(resource)
    assert token is not None
    return len(await target.pull(kind, since=None, params={"identifier": token}))


@pytest.fixture
def target(medplum_peer: Peer, http: httpx.AsyncClient) -> FhirTarget:
    return FhirTarget(http, medplum_peer.base_url, name="medplum")


@pytest.fixture(scope="module")
def second_medplum(medplum_peer: Peer) -> Iterator[Peer]:
    """Another Medplum, untouched by the per-resource pushes, so first creations show."""
    with medplum() as peer:
        yield peer


@pytest.fixture
def fresh_target(second_medplum: Peer, http: httpx.AsyncClient) -> FhirTarget:
    return FhirTarget(http, second_medplum.base_url, name="medplum-2")


async def test_medplum_answers_conditional_update_by_identifier(medplum_peer: Peer) -> None:
    """The protocol fact the target relies on: 201 for the first PUT, 200 for the second."""
    body = {"resourceType": "Patient", "identifier": [{"system": "urn:t", "value": "cond-1"}]}
    url = f"{medplum_peer.base_url}/Patient"
    async with httpx.AsyncClient() as client:
        first = await client.put(url, params={"identifier": "urn:t|cond-1"}, json=body)
        second = await client.put(url, params={"identifier": "urn:t|cond-1"}, json=body)
    assert (first.status_code, second.status_code) == (201, 200)
    assert first.json()["id"] == second.json()["id"]


@pytest.mark.parametrize("case", CASES)
async def test_each_fixture_resource_pushed_comes_back_unchanged_once(
    target: FhirTarget, case: str
) -> None:
    resources = [entry["resource"] for entry in bundle_of(case)["entry"]]
    before = datetime.now(UTC)
    await asyncio.sleep(0.01)  # Medplum stamps milliseconds
    first = [await target.push(r) for r in resources]
    again = [await target.push(r) for r in resources]
    # Every resource created once, updated in place the second time, same id at the target.
    assert [r.status for r in first] == [201] * len(resources)
    assert [r.status for r in again] == [200] * len(resources)
    assert [r.id for r in again] == [r.id for r in first]
    assert all(r.version_id for r in again)
    for resource in resources:
        assert await count(target, resource) == 1, identifier_token(resource)
    for kind in sorted({r["resourceType"] for r in resources}):
        pulled = await target.pull(kind, since=before)
        expected = [without_meta(r) for r in resources if r["resourceType"] == kind]
        assert sorted(map(json.dumps, map(without_meta, pulled))) == sorted(
            map(json.dumps, expected)
        ), kind


@pytest.mark.parametrize("case", CASES)
async def test_fixture_bundle_by_transactions_resolves_references(
    fresh_target: FhirTarget, case: str
) -> None:
    target = fresh_target
    bundle = bundle_of(case)
    # Medplum refuses a transaction with more than 8 conditional entries: a real limit of
    # the peer, which the target reports as a final 400 with its OperationOutcome.
    with pytest.raises(DeliveryError) as refused:
        await target.push_transaction(bundle)
    assert refused.value.status == 400
    assert not is_retryable(refused.value)
    assert refused.value.outcome is not None
    assert "too many entries" in json.dumps(refused.value.outcome["issue"])
    # So send it in slices, each referring to the earlier ones by the ids they got.
    resolved: dict[str, str] = {}
    for delivery in (1, 2):
        for start in range(0, len(bundle["entry"]), MEDPLUM_TRANSACTION_LIMIT):
            part = bundle["entry"][start : start + MEDPLUM_TRANSACTION_LIMIT]
            sliced = {**bundle, "entry": rewrite_references(part, resolved)}
            answer = await target.push_transaction(sliced)
            assert answer["type"] == "transaction-response"
            statuses = {e["response"]["status"] for e in answer["entry"]}
            assert statuses == ({"201"} if delivery == 1 else {"200"})
            for entry, result in zip(part, answer["entry"], strict=True):
                location = result["response"]["location"]
                assert resolved.setdefault(entry["fullUrl"], location) == location
    for entry in bundle["entry"]:
        resource = entry["resource"]
        kind, rid = resolved[entry["fullUrl"]].split("/")[:2]
        (held,) = await target.pull(kind, since=None, params={"_id": rid})
        assert without_meta(held) == without_meta(rewrite_references(resource, resolved))
        assert not json.dumps(held).count("urn:uuid:")
        assert await count(target, resource) == 1


async def test_update_by_id_without_identifier_and_idempotent_delete(target: FhirTarget) -> None:
    resource = {"resourceType": "Basic", "id": "no-identifier-1", "code": {"text": "x"}}
    first = await target.push(resource)
    second = await target.push({**resource, "code": {"text": "y"}})
    assert first.id == second.id == "no-identifier-1"
    (held,) = await target.pull("Basic", since=None, params={"_id": "no-identifier-1"})
    assert held["code"] == {"text": "y"}
    await target.delete("Basic", "no-identifier-1")
    await target.delete("Basic", "no-identifier-1")  # a redelivered deletion is no failure
    assert await target.pull("Basic", since=None, params={"_id": "no-identifier-1"}) == []


async def test_pull_follows_next_links_and_filters_by_last_updated(target: FhirTarget) -> None:
    def patient(n: int) -> Json:
        return {"resourceType": "Patient", "identifier": [{"system": "urn:pg", "value": str(n)}]}

    start = datetime.now(UTC)
    await asyncio.sleep(0.01)
    for n in range(23):
        await target.push(patient(n))
    await asyncio.sleep(0.01)
    middle = datetime.now(UTC)
    await asyncio.sleep(0.01)
    for n in range(23, 28):
        await target.push(patient(n))
    paged = await target.pull("Patient", since=start, page_size=10)
    values = sorted(int(p["identifier"][0]["value"]) for p in paged)
    assert values == list(range(28))  # three pages, nothing twice, nothing lost
    later = await target.pull("Patient", since=middle, page_size=10)
    assert sorted(int(p["identifier"][0]["value"]) for p in later) == list(range(23, 28))
    with pytest.raises(DeliveryError, match="more than 2 pages"):
        await target.pull("Patient", since=start, page_size=10, max_pages=2)


async def test_two_matches_for_an_identifier_is_a_final_conflict(
    target: FhirTarget, http: httpx.AsyncClient, medplum_peer: Peer
) -> None:
    body = {"resourceType": "Patient", "identifier": [{"system": "urn:dup", "value": "1"}]}
    for _ in range(2):  # plain creates, as a careless writer would
        (await http.post(f"{medplum_peer.base_url}/Patient", json=body)).raise_for_status()
    with pytest.raises(DeliveryError) as conflict:
        await target.push({**body, "active": True})
    assert conflict.value.status == 412
    assert conflict.value.kind == "conflict"
    assert not is_retryable(conflict.value)


async def test_a_refusal_keeps_the_operation_outcome(target: FhirTarget) -> None:
    with pytest.raises(DeliveryError) as refused:
        await target.push({"resourceType": "Patient", "id": "not a fhir id"})
    assert refused.value.status == 400
    assert not is_retryable(refused.value)
    assert refused.value.outcome
    assert refused.value.outcome["resourceType"] == "OperationOutcome"


def test_same_content_ignores_meta_and_id_only() -> None:
    a = {"resourceType": "Patient", "id": "1", "meta": {"versionId": "3"}, "active": True}
    assert same_content(a, {"resourceType": "Patient", "active": True})
    assert not same_content(a, {"resourceType": "Patient", "active": False})


def test_a_missing_medplum_install_is_an_error_not_a_skip(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(servers, "PEERS", tmp_path)
    with pytest.raises(servers.PeerMissingError, match="npm ci --prefix tests/peers"):
        servers.require_medplum()
