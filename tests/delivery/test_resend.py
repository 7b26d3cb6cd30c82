"""The same case sent again changes nothing, anywhere (issue 12, point 3): no new version
here, no new outbox message, no request to the target. The store keeps the version of an
identical update (``Stored.unchanged``, no Change); the outbox, for its part, never queues to a
target the content it was already queued (pending or delivered) for the same resource."""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from reko_fhir.store import SqlRepository, outbox, outbox_admin, outbox_delivery
from reko_fhir.store.outbox import Subscription
from reko_fhir.store.repository import Change
from tests.delivery.serving import FHIR_JSON, case, serving
from tests.peers.servers import Peer
from tests.store.conftest import postgres_schema

CASE_TYPES = ["Patient", "Organization", "PractitionerRole", "Consent", "EpisodeOfCare"]
CASE_TYPES += ["CareTeam", "CarePlan", "Procedure", "Communication"]


def requests_at(peer: Peer) -> list[str]:
    log: list[str] = httpx.get(f"{peer.base_url}/_log", timeout=5).json()["requests"]
    return log


async def test_resending_a_case_adds_no_version_no_message_and_no_request(
    tmp_path: Path, fault_peer: Peer
) -> None:
    target = {"name": "ehr", "base_url": fault_peer.base_url, "resource_types": CASE_TYPES}
    async with serving(tmp_path, [target]) as served:
        bundle = case()
        first = await served.http.post("/", json=bundle, headers=FHIR_JSON)
        assert first.status_code == 200, first.text
        assert {e["response"]["status"][:3] for e in first.json()["entry"]} == {"201"}
        sent = await served.settled()
        assert {m.status for m in sent} == {"delivered"}
        assert len(sent) == len(bundle["entry"])
        log = requests_at(fault_peer)
        assert len(log) == len(bundle["entry"])  # one conditional update each
        versions = {
            e["response"]["location"].split("/_history")[0]: e["response"]["etag"]
            for e in first.json()["entry"]
        }

        again = await served.http.post("/", json=bundle, headers=FHIR_JSON)
        assert again.status_code == 200, again.text
        assert {e["response"]["status"][:3] for e in again.json()["entry"]} == {"200"}
        assert {
            e["response"]["location"].split("/_history")[0]: e["response"]["etag"]
            for e in again.json()["entry"]
        } == versions  # the same version of each, not v2
        for location in versions:
            history = (await served.http.get(f"/{location}/_history")).json()
            assert len(history["entry"]) == 1, location

        # An unchanged PUT of one of them, as an EHR that syncs on a timer would send.
        plan_url = next(url for url in versions if url.startswith("CarePlan/"))
        plan = (await served.http.get(f"/{plan_url}")).json()
        put = await served.http.put(f"/{plan_url}", json=plan, headers=FHIR_JSON)
        assert (put.status_code, put.headers["etag"]) == (200, versions[plan_url])

        assert len(await served.settled()) == len(sent)  # no new outbox row
        assert requests_at(fault_peer) == log  # the target heard nothing more


@pytest.fixture(params=["sqlite", "postgresql"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[SqlRepository]:
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'store.sqlite3'}"
        repo = await SqlRepository.open(url)
        yield repo
        await repo.close()
        return
    async with postgres_schema() as url:
        repo = await SqlRepository.open(url.replace("postgresql://", "postgresql+psycopg://", 1))
        yield repo
        await repo.close()


PLAN = {
    "resourceType": "CarePlan",
    "id": "plan-1",
    "meta": {"versionId": "2", "lastUpdated": "2025-01-01T00:00:00Z", "profile": ["urn:p"]},
    "identifier": [{"system": "urn:s", "value": "PLAN-1"}],
    "status": "active",
    "subject": {"reference": "Patient/p1"},
}
EHR = Subscription("ehr", frozenset({"CarePlan"}))
ARCHIVE = Subscription("archive", frozenset())


def version(n: int, **changes: object) -> Change:
    """Version ``n`` of the plan, its meta as the store stamps it, content changed by ``changes``."""
    resource = copy.deepcopy(PLAN) | changes
    stamp = {"versionId": str(n), "lastUpdated": f"2025-01-0{n}T00:00:00Z"}
    resource["meta"] = {**resource["meta"], **stamp}  # type: ignore[dict-item]
    return Change("CarePlan", "plan-1", n, resource)


async def queued(repo: SqlRepository) -> list[tuple[str, int, str]]:
    async with repo.transaction(writer=False) as conn:
        return [(m.target, m.version, m.operation) for m in await outbox_admin.messages(conn)]


async def test_an_identical_payload_is_not_queued_twice_for_a_target(store: SqlRepository) -> None:
    async with store.transaction() as conn:
        assert await outbox.enqueue(conn, [version(2)], [EHR, ARCHIVE]) == 2
    async with store.transaction() as conn:
        # The same content under a later version and timestamp: nothing new for either target.
        assert await outbox.enqueue(conn, [version(3)], [EHR, ARCHIVE]) == 0
    async with store.transaction() as conn:
        # A target subscribed since has not been queued it: it is.
        assert (
            await outbox.enqueue(conn, [version(3)], [EHR, Subscription("new", frozenset())]) == 1
        )
    assert await queued(store) == [
        ("ehr", 2, "upsert"),
        ("archive", 2, "upsert"),
        ("new", 3, "upsert"),
    ]


async def test_only_the_newest_content_counts_and_a_dead_letter_does_not(
    store: SqlRepository,
) -> None:
    async with store.transaction() as conn:
        await outbox.enqueue(conn, [version(2)], [EHR])
        await outbox.enqueue(conn, [version(3, status="completed")], [EHR])
        # Back to the first content: the target was last sent other content, so it is owed.
        assert await outbox.enqueue(conn, [version(4)], [EHR]) == 1
        # A profile added is a change of content (meta.profile travels), a timestamp is not.
        assert await outbox.enqueue(conn, [version(5, meta={"profile": ["urn:q"]})], [EHR]) == 1
    async with store.transaction() as conn:
        (newest,) = [m for m in await outbox_admin.messages(conn) if m.version == 5]
        await outbox_delivery.record_attempts(
            conn, [outbox_delivery.AttemptOutcome(newest, "dead", 400, "refused", None, "rejected")]
        )
    async with store.transaction() as conn:
        # Sending the same again is how a client retries what the target refused.
        assert await outbox.enqueue(conn, [version(6, meta={"profile": ["urn:q"]})], [EHR]) == 1
    assert [v for (_, v, _) in await queued(store)] == [2, 3, 4, 5, 6]
