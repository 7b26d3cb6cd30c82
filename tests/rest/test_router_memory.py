"""The router and transaction semantics on the memory repository: no database, milliseconds.

The same interactions run on SQLite and PostgreSQL in tests/store and tests/api; here the
REST rules themselves (https://hl7.org/fhir/R4/http.html) are pinned down on a real router."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from reko_fhir.rest.messages import FhirRequest
from reko_fhir.rest.router import FhirRouter
from reko_fhir.store import Partitions, Search
from reko_fhir.store.memory import MemoryRepository
from reko_fhir.validation.service import ValidationService

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
Json = dict[str, Any]


@pytest.fixture
def router(store: MemoryRepository, validation: ValidationService) -> FhirRouter:
    return FhirRouter(store, validation)


def case_a() -> Json:
    bundle: Json = json.loads(
        (FIXTURES / "mapping" / "a-primary-care" / "expected.json").read_text()
    )
    return bundle


async def versions(store: MemoryRepository) -> int:
    """Versions of every type the store holds (deletions aside)."""
    kinds = {v.type for v in store.data.versions}
    return sum([len(await store.history(kind)) for kind in kinds])


async def test_a_case_is_stored_whole_and_resending_it_changes_nothing(
    router: FhirRouter, store: MemoryRepository
) -> None:
    first = await router.handle(FhirRequest("POST", "/"), case_a())
    assert first.status == 200, first.resource
    assert first.resource is not None
    assert {e["response"]["status"][:3] for e in first.resource["entry"]} == {"201"}
    stored = await versions(store)
    assert stored == len(case_a()["entry"])

    again = await router.handle(FhirRequest("POST", "/"), case_a())
    assert again.status == 200, again.resource
    assert again.resource is not None
    assert {e["response"]["status"][:3] for e in again.resource["entry"]} == {"200"}
    assert await versions(store) == stored  # no new version of anything
    assert len(store.data.changes) == stored  # nothing more for the outbox either


async def test_a_transaction_with_one_bad_entry_stores_nothing(
    router: FhirRouter, store: MemoryRepository
) -> None:
    bundle = case_a()
    procedure = next(e for e in bundle["entry"] if e["resource"]["resourceType"] == "Procedure")
    procedure["resource"]["status"] = "not-a-status"
    answer = await router.handle(FhirRequest("POST", "/"), bundle)
    assert answer.status in (400, 422), answer.resource
    assert await versions(store) == 0


async def test_update_is_no_create_and_an_unchanged_update_keeps_the_version(
    router: FhirRouter, store: MemoryRepository
) -> None:
    assert (await router.handle(FhirRequest("POST", "/"), case_a())).status == 200
    (patient,) = await store.search("Patient", Search())
    missing = {**copy.deepcopy(patient.resource), "id": "no-such-patient"}
    refused = await router.handle(FhirRequest("PUT", "/Patient/no-such-patient"), missing)
    assert refused.status == 404
    assert refused.resource is not None
    assert refused.resource["resourceType"] == "OperationOutcome"

    same = await router.handle(FhirRequest("PUT", f"/Patient/{patient.id}"), patient.resource)
    assert same.status == 200
    assert same.headers["ETag"] == f'W/"{patient.version}"'
    assert (await store.read("Patient", patient.id)).version == patient.version


async def test_a_deleted_resource_reads_as_gone_and_deleting_it_again_is_quiet(
    router: FhirRouter, store: MemoryRepository
) -> None:
    assert (await router.handle(FhirRequest("POST", "/"), case_a())).status == 200
    (plan,) = await store.search("CarePlan", Search())
    deleted = await router.handle(FhirRequest("DELETE", f"/CarePlan/{plan.id}"))
    assert deleted.status in (200, 204)
    assert (await router.handle(FhirRequest("GET", f"/CarePlan/{plan.id}"))).status == 410
    assert (await router.handle(FhirRequest("DELETE", f"/CarePlan/{plan.id}"))).status in (
        200,
        204,
    )
    assert (await router.handle(FhirRequest("DELETE", "/CarePlan/never-was"))).status == 404


async def test_another_units_data_is_absent_for_every_read(
    store: MemoryRepository, validation: ValidationService
) -> None:
    ours = FhirRouter(store, validation)
    assert (await ours.handle(FhirRequest("POST", "/"), case_a())).status == 200
    (patient,) = await store.search("Patient", Search())
    other = FhirRouter(store.scoped(Partitions.of_unit("SE2321000016-VC02")), validation)
    read = await other.handle(FhirRequest("GET", f"/Patient/{patient.id}"))
    assert read.status == 404
    found = await other.handle(FhirRequest("GET", "/Procedure"))
    assert found.resource is not None
    assert found.resource.get("total") == 0
    assert found.resource.get("entry", []) == []
    history = await other.handle(FhirRequest("GET", f"/Patient/{patient.id}/_history"))
    assert history.resource is not None
    assert history.resource.get("entry", []) == []
    # Writing to it answers as a write to a missing resource.
    put = await other.handle(FhirRequest("PUT", f"/Patient/{patient.id}"), patient.resource)
    assert put.status == 404
