"""A case posted to reko-fhir reaches a real EHR (Medplum on loopback) through the outbox and
the in-process worker: every resource once, every reference resolving there; pulled back, it
lands on the same resources here, validated, pointing at our own ids again."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from reko_fhir.api import create_app
from reko_fhir.config import Settings
from reko_fhir.delivery.fhir import FhirTarget, identifier_token
from reko_fhir.mapping.references import literal_references
from reko_fhir.pull import pull_into_store
from reko_fhir.rest.router import FhirRouter
from reko_fhir.store import Partitions, Search, outbox, outbox_admin
from tests.api.test_api import platform_token
from tests.golden import FIXTURES
from tests.peers.servers import Peer

Json = dict[str, Any]
CASE_TYPES = [
    "Patient",
    "Organization",
    "PractitionerRole",
    "Consent",
    "EpisodeOfCare",
    "CareTeam",
    "CarePlan",
    "Procedure",
    "Communication",
]

UNIT = "SE2321000016-VC01"  # the care unit of golden case a


@pytest.fixture(params=[None, 50], ids=["single", "batch"])
async def app(
    tmp_path: Path, medplum_peer: Peer, request: pytest.FixtureRequest
) -> AsyncIterator[FastAPI]:
    """The app delivering to Medplum one request a resource, or in ``batch`` Bundles."""
    target = {"name": "ehr", "base_url": medplum_peer.base_url, "resource_types": CASE_TYPES}
    targets = json.dumps([target | ({"batch": request.param} if request.param else {})])
    application = create_app(Settings(data_dir=tmp_path, targets=targets, workers=1))
    async with application.router.lifespan_context(application):
        yield application


async def drained(app: FastAPI, seconds: float = 20) -> None:
    router: FhirRouter = app.state.router
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while loop.time() < deadline:
        async with router.default_repository.transaction(writer=False) as conn:
            depth = await outbox_admin.depth(conn)
        if not any(status == "pending" for (_, status) in depth):
            assert not any(status == "dead" for (_, status) in depth), depth
            return
        await asyncio.sleep(0.2)
    async with router.default_repository.transaction(writer=False) as conn:
        stuck = await outbox_admin.messages(conn, status="pending")
    raise TimeoutError(
        f"the outbox did not drain: {[(m.resource_type, m.last_error) for m in stuck]}"
    )


async def test_a_case_reaches_the_ehr_whole_and_comes_back_home(
    app: FastAPI, medplum_peer: Peer, tmp_path: Path
) -> None:
    bundle = json.loads((FIXTURES / "mapping" / "a-primary-care" / "expected.json").read_text())
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport,
        base_url="http://reko.test",
        headers={
            "authorization": f"Bearer {platform_token(tmp_path)}",
            "x-reko-care-unit": UNIT,
        },
    ) as client:
        answer = await client.post(
            "/", json=bundle, headers={"content-type": "application/fhir+json"}
        )
        assert answer.status_code == 200, answer.text
    await drained(app)

    async with httpx.AsyncClient(timeout=10) as http:
        ehr = FhirTarget(http, medplum_peer.base_url, name="ehr")
        held: dict[str, Json] = {}
        for entry in bundle["entry"]:
            resource = entry["resource"]
            token = identifier_token(resource)
            assert token is not None
            found = await ehr.pull(
                resource["resourceType"], since=None, params={"identifier": token}
            )
            assert len(found) == 1, token  # once, however the worker retried
            held[f"{resource['resourceType']}/{found[0]['id']}"] = found[0]
        dangling = sorted(
            ref
            for resource in held.values()
            for ref in literal_references(resource)
            if ref not in held
        )
        assert dangling == []  # every reference points at what the EHR itself holds

        router: FhirRouter = app.state.router
        async with router.default_repository.transaction(writer=False) as conn:
            names = await outbox.local_names(conn, "ehr")
        before = {
            kind: await router.default_repository.total(kind, Search())
            for kind in ("CarePlan", "Procedure")
        }
        unit = router.default_repository.scoped(Partitions.of_unit(UNIT))
        results = await pull_into_store(router, ehr, since=None, names=names, repository=unit)
        assert {r.status for r in results} == {200}, [r.outcome for r in results if not r.stored]
        after = {
            kind: await router.default_repository.total(kind, Search())
            for kind in ("CarePlan", "Procedure")
        }
        assert after == before  # matched by identifier: nothing new stored
        (plan,) = await router.default_repository.search("CarePlan", Search())
        (patient,) = await router.default_repository.search("Patient", Search())
        assert plan.resource["subject"]["reference"] == f"Patient/{patient.id}"
