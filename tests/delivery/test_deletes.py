"""Deletes (issue 12, point 4): the unit that deleted a resource reads 410 Gone, and the
deletion reaches every target that received the resource, as a conditional delete by its
business identifier (https://hl7.org/fhir/R4/http.html#3.1.0.7.1), retried and dead-lettered
as any delivery is. A target that never received it is sent nothing."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlencode

import httpx

from reko_fhir.delivery.fhir import FhirTarget, identifier_token
from reko_fhir.store import outbox_admin
from tests.delivery.serving import FHIR_JSON, UNIT, Served, case, serving
from tests.peers.servers import Peer, fault_target

OTHER_UNIT = "SE2321000016-PS03"
CASE_TYPES = ["Patient", "Organization", "PractitionerRole", "Consent", "EpisodeOfCare"]
CASE_TYPES += ["CareTeam", "CarePlan", "Procedure", "Communication"]


def log_of(peer: Peer) -> list[str]:
    requests: list[str] = httpx.get(f"{peer.base_url}/_log", timeout=5).json()["requests"]
    return requests


def held(peer: Peer, kind: str, token: str) -> int:
    found = httpx.get(f"{peer.base_url}/{kind}", params={"identifier": token}, timeout=5).json()
    return len(found.get("entry") or [])


async def posted(served: Served, **headers: str) -> dict[str, str]:
    """The case's resources by ``Type?identifier=system|value``: their ``Type/id`` here."""
    bundle = case()
    answer = await served.http.post("/", json=bundle, headers={**FHIR_JSON, **headers})
    assert answer.status_code == 200, answer.text
    return {
        e["request"]["url"]: a["response"]["location"].split("/_history")[0]
        for e, a in zip(bundle["entry"], answer.json()["entry"], strict=True)
    }


def named(ids: dict[str, str], kind: str, value: str) -> tuple[str, str]:
    """(``Type/id`` here, ``system|value``) of the case's resource with identifier ``value``."""
    url = next(u for u in ids if u.startswith(f"{kind}?") and u.endswith(f"|{value}"))
    return ids[url], url.split("identifier=", 1)[1]


async def test_the_deleting_unit_reads_410_and_another_unit_still_404(tmp_path: Path) -> None:
    async with serving(tmp_path, []) as served:
        own = served.headers(unit=UNIT)
        ids = await posted(served, **own)
        procedure, _ = named(ids, "Procedure", "J-88154")
        assert (await served.http.delete(f"/{procedure}", headers=own)).status_code == 204
        gone = await served.http.get(f"/{procedure}", headers=own)
        assert gone.status_code == 410, gone.text
        assert gone.json()["resourceType"] == "OperationOutcome"
        # Deleting again changes nothing and says so the same way.
        assert (await served.http.delete(f"/{procedure}", headers=own)).status_code == 204
        assert (await served.http.get(f"/{procedure}", headers=own)).status_code == 410
        # Another unit never saw it: its tombstone is no business of theirs either.
        other = await served.http.get(f"/{procedure}", headers=served.headers(unit=OTHER_UNIT))
        assert other.status_code == 404


async def test_a_delete_reaches_each_target_that_received_it_by_identifier(
    tmp_path: Path, fault_peer: Peer
) -> None:
    with fault_target(0.0) as plans_peer:
        targets = [
            {"name": "ehr", "base_url": fault_peer.base_url, "resource_types": CASE_TYPES},
            {"name": "plans", "base_url": plans_peer.base_url, "resource_types": ["CarePlan"]},
        ]
        async with serving(tmp_path, targets) as served:
            ids = await posted(served)
            await served.settled()
            procedure, procedure_token = named(ids, "Procedure", "J-88154")
            plan, plan_token = named(ids, "CarePlan", "PLAN-0042-1")
            assert held(fault_peer, "Procedure", procedure_token) == 1
            assert held(plans_peer, "CarePlan", plan_token) == 1
            ehr_before, plans_before = len(log_of(fault_peer)), len(log_of(plans_peer))

            assert (await served.http.delete(f"/{procedure}")).status_code == 204
            assert (await served.http.delete(f"/{plan}")).status_code == 204
            messages = await served.settled()
            deletions = [m for m in messages if m.operation == "delete"]
            assert sorted((m.target, m.resource_type, m.status) for m in deletions) == [
                ("ehr", "CarePlan", "delivered"),
                ("ehr", "Procedure", "delivered"),
                ("plans", "CarePlan", "delivered"),  # plans never got the Procedure
            ]
            patient = ids[next(u for u in ids if u.startswith("Patient?"))]
            assert {m.ordering_key for m in deletions} == {patient}  # after the patient's own

            assert log_of(fault_peer)[ehr_before:] == [
                f"DELETE /Procedure?{urlencode({'identifier': procedure_token})}",
                f"DELETE /CarePlan?{urlencode({'identifier': plan_token})}",
            ]
            assert log_of(plans_peer)[plans_before:] == [
                f"DELETE /CarePlan?{urlencode({'identifier': plan_token})}"
            ]
            assert held(fault_peer, "Procedure", procedure_token) == 0
            assert held(fault_peer, "CarePlan", plan_token) == 0
            assert held(plans_peer, "CarePlan", plan_token) == 0

            # A deletion deleted again here is not sent again.
            assert (await served.http.delete(f"/{procedure}")).status_code == 204
            assert len(await served.settled()) == len(messages)


async def test_a_delete_is_retried_and_dead_lettered_as_any_delivery(
    tmp_path: Path, fault_peer: Peer
) -> None:
    target = {"name": "ehr", "base_url": fault_peer.base_url, "resource_types": CASE_TYPES}
    async with serving(tmp_path, [target]) as served:
        ids = await posted(served)
        await served.settled()
        first, first_token = named(ids, "Procedure", "J-88101")
        second, second_token = named(ids, "Procedure", "J-88230")

        httpx.post(f"{fault_peer.base_url}/_fault", params={"mode": "503", "count": 2})
        assert (await served.http.delete(f"/{first}")).status_code == 204
        (retried,) = [m for m in await served.settled() if m.operation == "delete"]
        async with served.repository.transaction(writer=False) as conn:
            found = await outbox_admin.message(conn, retried.id)
        assert found is not None
        _, attempts = found
        assert [(a.result, a.status) for a in attempts] == [
            ("retry", 503),
            ("retry", 503),
            ("delivered", 204),
        ]
        assert held(fault_peer, "Procedure", first_token) == 0

        httpx.post(f"{fault_peer.base_url}/_fault", params={"mode": "400", "count": 1})
        assert (await served.http.delete(f"/{second}")).status_code == 204
        (dead,) = [m for m in await served.settled() if m.status == "dead"]
        assert (dead.operation, dead.dead_reason) == ("delete", "rejected")
        assert "HTTP 400" in (dead.last_error or "")
        assert held(fault_peer, "Procedure", second_token) == 1  # refused: still there

        async with served.repository.transaction() as conn:
            assert await outbox_admin.replay(conn, message_id=dead.id) == 1
        replayed = {m.id: m for m in await served.settled()}[dead.id]
        assert replayed.status == "delivered"
        assert held(fault_peer, "Procedure", second_token) == 0


async def test_medplum_deletes_by_identifier_and_a_second_delete_is_a_success(
    medplum_peer: Peer,
) -> None:
    """The conditional delete against a real FHIR server: gone after, and idempotent."""
    plan = case()["entry"]
    (resource,) = [e["resource"] for e in plan if e["resource"]["resourceType"] == "CarePlan"]
    resource = {k: v for k, v in resource.items() if k not in ("id", "subject", "author")}
    resource["subject"] = {"display": "a patient"}
    async with httpx.AsyncClient(timeout=10) as http:
        ehr = FhirTarget(http, medplum_peer.base_url, name="ehr")
        token = identifier_token(resource)
        assert token is not None
        await ehr.push(resource)
        assert len(await ehr.pull("CarePlan", since=None, params={"identifier": token})) == 1
        assert await ehr.delete_match("CarePlan", token) in (200, 204)
        assert await ehr.pull("CarePlan", since=None, params={"identifier": token}) == []
        assert await ehr.delete_match("CarePlan", token) in (200, 204, 404)
