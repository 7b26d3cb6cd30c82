"""The FHIR service over HTTP (in-process ASGI): the interactions built so far, on SQLite."""

from __future__ import annotations

import asyncio
import copy
import json
import logging
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from reko_fhir.api import create_app
from reko_fhir.config import Settings
from reko_fhir.security.tokens import LocalSigningKey
from reko_fhir.store import SqlRepository
from tests.golden import FIXTURES
from tests.store.conftest import postgres_schema

FHIR_JSON = {"content-type": "application/fhir+json"}
_APPS: weakref.WeakKeyDictionary[httpx.AsyncClient, FastAPI] = weakref.WeakKeyDictionary()


@pytest.fixture(params=["sqlite", "postgresql"])
async def client(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[httpx.AsyncClient]:
    """The app on its embedded SQLite default, and on PostgreSQL (a schema of its own)."""
    if request.param == "sqlite":
        settings = Settings(data_dir=tmp_path)
        async with _serving(settings) as http:
            yield http
        return
    async with (
        postgres_schema() as url,
        _serving(Settings(data_dir=tmp_path, database_url=url)) as http,
    ):
        yield http


@asynccontextmanager
async def _serving(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        # A platform token (every unit): these tests are about FHIR, not about who may see what.
        token = platform_token(settings.data_dir)
        # … writing into one care unit's partition, as a platform names it per request.
        headers = {"authorization": f"Bearer {token}", "x-reko-care-unit": PLATFORM_UNIT}
        async with httpx.AsyncClient(
            transport=transport,
            base_url="http://reko.test",
            headers=headers,
        ) as http:
            _APPS[http] = app
            yield http


PLATFORM_UNIT = "SE2321000016-15CQ"


def platform_token(data_dir: Path) -> str:
    """A token of the service's local key for a system acting for every care unit."""
    key = LocalSigningKey.load_or_create(data_dir)
    return key.mint("system/*.cruds reko/admin", subject="SE2321000016-PLAT", all_units=True)


async def row_counts(client: httpx.AsyncClient) -> dict[str, int]:
    """Rows per table of the store behind ``client`` (the app's own repository)."""
    store: SqlRepository = _APPS[client].state.repository
    counts = await store.row_counts()
    # The access log grows with every request, refused ones included: that is its job.
    return {k: v for k, v in counts.items() if not k.startswith("audit_")}


async def post_case(client: httpx.AsyncClient, case: str) -> dict[str, str]:
    """POST a golden Bundle's entries one by one, rewriting urn:uuid references as a client would."""
    bundle = json.loads((FIXTURES / "mapping" / case / "expected.json").read_text(encoding="utf-8"))
    ids: dict[str, str] = {}
    for entry in bundle["entry"]:
        text = json.dumps(entry["resource"])
        for urn, ref in ids.items():
            text = text.replace(urn, ref)
        resource = json.loads(text)
        answer = await client.post(f"/{resource['resourceType']}", json=resource, headers=FHIR_JSON)
        assert answer.status_code == 201, answer.text
        ids[entry["fullUrl"]] = f"{resource['resourceType']}/{answer.json()['id']}"
    return ids


async def test_metadata_states_what_is_implemented(client: httpx.AsyncClient) -> None:
    answer = await client.get("/metadata")
    assert answer.status_code == 200
    statement = answer.json()
    assert statement["fhirVersion"] == "4.0.1"
    assert statement["format"] == ["application/fhir+json", "application/fhir+xml"]
    kinds = {r["type"]: r for r in statement["rest"][0]["resource"]}
    assert "Procedure" in kinds
    assert kinds["Procedure"]["supportedProfile"] == [
        "http://reko-fhir.se/fhir/StructureDefinition/RekoProcedure"
    ]
    # Provenance is read-only: read, vread, its history and search, no write.
    assert [i["code"] for i in kinds["Provenance"]["interaction"]] == [
        "read",
        "vread",
        "history-instance",
        "history-type",
        "search-type",
    ]


async def test_a_case_posted_comes_back_by_search_in_json_and_xml(
    client: httpx.AsyncClient,
) -> None:
    ids = await post_case(client, "b-psychiatry-revoked-consent")
    patient = next(ref for ref in ids.values() if ref.startswith("Patient/"))
    found = await client.get("/Procedure", params={"patient": patient})
    assert found.status_code == 200
    assert found.json()["total"] == 9
    as_xml = await client.get("/Procedure", params={"patient": patient, "_format": "xml"})
    assert as_xml.headers["content-type"].startswith("application/fhir+xml")
    assert as_xml.text.count("<Procedure>") == 9


async def test_disclosure_without_consent_in_the_store_is_422_and_nothing_is_stored(
    client: httpx.AsyncClient,
) -> None:
    ids = await post_case(client, "b-psychiatry-revoked-consent")
    patient = next(ref for ref in ids.values() if ref.startswith("Patient/"))
    procedures = (await client.get("/Procedure", params={"patient": patient})).json()["entry"]
    meeting = copy.deepcopy(
        next(
            e["resource"]
            for e in procedures
            if e["resource"]["identifier"][0]["value"] == "J-91188"
        )
    )
    for key in ("id", "meta"):
        meeting.pop(key)
    meeting["identifier"][0]["value"] = "J-99999"
    meeting["performedDateTime"] = "2025-05-12T09:00:00+02:00"  # after the revocation on 2025-04-22
    before = (await client.get("/Procedure", params={"patient": patient})).json()["total"]
    answer = await client.post("/Procedure", json=meeting, headers=FHIR_JSON)
    assert answer.status_code == 422
    issues = answer.json()["issue"]
    assert any(
        "no consent of the patient covers disclosure" in i["diagnostics"]
        and i["expression"] == ["Procedure.extension[0]"]
        for i in issues
    )
    assert (await client.get("/Procedure", params={"patient": patient})).json()["total"] == before


async def test_read_vread_update_if_match_and_delete(client: httpx.AsyncClient) -> None:
    patient = json.loads(
        (FIXTURES / "valid" / "patient-personnummer-system.json").read_text(encoding="utf-8")
    )
    created = await client.post("/Patient", json=patient, headers=FHIR_JSON)
    pid = created.json()["id"]
    assert created.headers["etag"] == 'W/"1"'
    assert created.headers["location"] == f"Patient/{pid}/_history/1"
    changed = {**created.json(), "active": True}
    updated = await client.put(
        f"/Patient/{pid}", json=changed, headers={**FHIR_JSON, "if-match": 'W/"1"'}
    )
    assert (updated.status_code, updated.headers["etag"]) == (200, 'W/"2"')
    stale = await client.put(
        f"/Patient/{pid}", json=changed, headers={**FHIR_JSON, "if-match": 'W/"1"'}
    )
    assert stale.status_code == 412
    assert stale.json()["resourceType"] == "OperationOutcome"
    assert (await client.get(f"/Patient/{pid}/_history/1")).json().get("active") is None
    history = (await client.get(f"/Patient/{pid}/_history")).json()
    assert [e["resource"]["meta"]["versionId"] for e in history["entry"]] == ["2", "1"]
    assert (await client.delete(f"/Patient/{pid}")).status_code == 204
    assert (await client.get(f"/Patient/{pid}")).status_code == 410


async def test_conditional_create_and_update(client: httpx.AsyncClient) -> None:
    patient = json.loads(
        (FIXTURES / "valid" / "patient-personnummer-system.json").read_text(encoding="utf-8")
    )
    condition = "identifier=http://electronichealth.se/identifier/samordningsnummer|199103744521"
    first = await client.post(
        "/Patient", json=patient, headers={**FHIR_JSON, "if-none-exist": condition}
    )
    again = await client.post(
        "/Patient", json=patient, headers={**FHIR_JSON, "if-none-exist": condition}
    )
    assert (first.status_code, again.status_code, again.json()["id"]) == (
        201,
        200,
        first.json()["id"],
    )
    updated = await client.put(
        "/Patient",
        params={"identifier": "199103744521"},
        json={**patient, "active": True},
        headers=FHIR_JSON,
    )
    assert (updated.status_code, updated.json()["id"], updated.json()["meta"]["versionId"]) == (
        200,
        first.json()["id"],
        "2",
    )


@pytest.mark.parametrize(
    ("method", "path", "body", "headers", "status"),
    [
        ("POST", "/Patient", b"{broken", FHIR_JSON, 400),
        (
            "POST",
            "/Patient",
            b"<!DOCTYPE x [<!ENTITY e 'e'>]><Patient xmlns='http://hl7.org/fhir'/>",
            {"content-type": "application/fhir+xml"},
            400,
        ),
        ("POST", "/Patient", b"name=x", {"content-type": "application/x-www-form-urlencoded"}, 415),
        ("POST", "/Patient", json.dumps({"resourceType": "Procedure"}).encode(), FHIR_JSON, 400),
        ("POST", "/Diagnosis", json.dumps({"resourceType": "Diagnosis"}).encode(), FHIR_JSON, 404),
        (
            "POST",
            "/Provenance",
            json.dumps({"resourceType": "Provenance"}).encode(),
            FHIR_JSON,
            405,
        ),
        ("GET", "/Patient?shoeSize=44", b"", {"prefer": "handling=strict"}, 400),
        ("GET", "/Patient?_count=many", b"", {}, 400),
        ("GET", "/Patient/none", b"", {}, 404),
        (
            "PUT",
            "/Patient/x",
            json.dumps({"resourceType": "Patient", "id": "y"}).encode(),
            FHIR_JSON,
            400,
        ),
    ],
)
async def test_bad_requests_get_an_operation_outcome_and_store_nothing(
    client: httpx.AsyncClient,
    method: str,
    path: str,
    body: bytes,
    headers: dict[str, str],
    status: int,
) -> None:
    await post_bundle(client, "a-primary-care")
    rows = await row_counts(client)
    assert rows["resource_version"] > 0
    assert rows["token_index"] > 0
    answer = await client.request(method, path, content=body, headers=headers)
    assert answer.status_code == status, answer.text
    outcome: dict[str, Any] = answer.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["severity"] in ("error", "fatal")
    assert outcome["issue"][0]["diagnostics"]
    assert await row_counts(client) == rows


async def test_refused_changes_to_stored_resources_lose_nothing(client: httpx.AsyncClient) -> None:
    """Stale If-Match, an invalid update, a bad delete: 4xx, every table as it was."""
    await post_bundle(client, "a-primary-care")
    patient = (await client.get("/Patient")).json()["entry"][0]["resource"]
    rows = await row_counts(client)
    stale = await client.put(
        f"/Patient/{patient['id']}", json=patient, headers={**FHIR_JSON, "if-match": 'W/"7"'}
    )
    broken = copy.deepcopy(patient)
    broken["identifier"][0]["value"] = "191212121213"  # fails the Luhn check
    invalid = await client.put(f"/Patient/{patient['id']}", json=broken, headers=FHIR_JSON)
    not_json = await client.put(f"/Patient/{patient['id']}", content=b"[", headers=FHIR_JSON)
    unknown = await client.delete("/Diagnosis/1")
    statuses = [a.status_code for a in (stale, invalid, not_json, unknown)]
    assert statuses == [412, 422, 400, 404]
    for answer in (stale, invalid, not_json, unknown):
        assert answer.json()["resourceType"] == "OperationOutcome"
    assert any(i.get("expression") for i in invalid.json()["issue"])
    assert await row_counts(client) == rows
    assert (await client.get(f"/Patient/{patient['id']}")).json() == patient


async def post_bundle(client: httpx.AsyncClient, case: str, fmt: str = "json") -> httpx.Response:
    path = FIXTURES / "mapping" / case / f"expected.{fmt}"
    return await client.post(
        "/", content=path.read_bytes(), headers={"content-type": f"application/fhir+{fmt}"}
    )


async def test_a_transaction_bundle_lands_once_however_often_it_is_sent(
    client: httpx.AsyncClient,
) -> None:
    first = await post_bundle(client, "b-psychiatry-revoked-consent")
    assert first.status_code == 200, first.text
    statuses = [e["response"]["status"] for e in first.json()["entry"]]
    assert statuses == ["201 Created"] * 22
    again = await post_bundle(client, "b-psychiatry-revoked-consent", "xml")
    assert [e["response"]["status"] for e in again.json()["entry"]] == ["200 OK"] * 22
    procedures = (await client.get("/Procedure")).json()
    assert procedures["total"] == 9
    patient = (await client.get("/Patient")).json()["entry"][0]["resource"]
    subjects = {e["resource"]["subject"]["reference"] for e in procedures["entry"]}
    assert subjects == {f"Patient/{patient['id']}"}  # urn:uuid references rewritten


async def test_a_transaction_with_one_bad_entry_stores_nothing(client: httpx.AsyncClient) -> None:
    bundle = json.loads(
        (FIXTURES / "mapping" / "a-primary-care" / "expected.json").read_text(encoding="utf-8")
    )
    bundle["entry"][-1]["resource"]["reasonCode"] = [{"text": "diagnos"}]
    answer = await client.post("/", json=bundle, headers=FHIR_JSON)
    assert answer.status_code == 422
    last = len(bundle["entry"]) - 1
    assert any(
        i["expression"] == [f"Bundle.entry[{last}].resource.reasonCode"]
        for i in answer.json()["issue"]
    )
    for kind in ("Patient", "Procedure", "Organization", "Consent"):
        assert (await client.get(f"/{kind}")).json()["total"] == 0


async def test_a_batch_answers_each_entry_on_its_own(client: httpx.AsyncClient) -> None:
    bundle = json.loads(
        (FIXTURES / "mapping" / "a-primary-care" / "expected.json").read_text(encoding="utf-8")
    )
    organization, broken = bundle["entry"][0], copy.deepcopy(bundle["entry"][0])
    broken["resource"]["identifier"] = [{"system": "urn:oid:1.2.3", "value": "x"}]
    broken["request"]["url"] = "Organization?identifier=urn:oid:1.2.3|x"
    answer = await client.post(
        "/",
        json={"resourceType": "Bundle", "type": "batch", "entry": [organization, broken]},
        headers=FHIR_JSON,
    )
    assert answer.status_code == 200
    first, second = answer.json()["entry"]
    assert first["response"]["status"] == "201 Created"
    assert second["response"]["status"] == "422"
    assert second["response"]["outcome"]["resourceType"] == "OperationOutcome"


async def test_fifty_parallel_conditional_creates_over_http_store_one(
    client: httpx.AsyncClient,
) -> None:
    patient = json.loads(
        (FIXTURES / "valid" / "patient-personnummer-system.json").read_text(encoding="utf-8")
    )
    condition = "identifier=http://electronichealth.se/identifier/samordningsnummer|199103744521"
    answers = await asyncio.gather(
        *(
            client.post("/Patient", json=patient, headers={**FHIR_JSON, "if-none-exist": condition})
            for _ in range(50)
        )
    )
    assert sorted(a.status_code for a in answers) == [200] * 49 + [201]
    assert len({a.json()["id"] for a in answers}) == 1
    assert (await client.get("/Patient")).json()["total"] == 1


async def test_concurrent_resends_of_a_case_all_succeed_and_store_it_once(
    client: httpx.AsyncClient,
) -> None:
    """Seen on PostgreSQL (issue 15): 26 concurrent resends of one case answered 404 "Patient/…
    is not known". Each must answer 200, and the case be stored once, each resource in version 1
    (the resends change nothing)."""
    bundle = json.loads((FIXTURES / "mapping" / "a-primary-care" / "expected.json").read_text())
    answers = await asyncio.gather(
        *(client.post("/", json=bundle, headers=FHIR_JSON) for _ in range(26))
    )
    assert [a.status_code for a in answers] == [200] * 26, [
        a.json() for a in answers if a.status_code != 200
    ][:1]
    kinds = [entry["resource"]["resourceType"] for entry in bundle["entry"]]
    for kind in sorted(set(kinds)):
        found = (await client.get(f"/{kind}", params={"_count": "100"})).json()
        assert found["total"] == kinds.count(kind), kind
        assert {e["resource"]["meta"]["versionId"] for e in found["entry"]} == {"1"}, kind


async def test_search_pages_sorts_counts_and_reports_unknown_parameters(
    client: httpx.AsyncClient,
) -> None:
    await post_bundle(client, "b-psychiatry-revoked-consent")
    first = (await client.get("/Procedure", params={"_count": "4", "_sort": "_id"})).json()
    assert first["total"] == 9
    assert len(first["entry"]) == 4
    links = {link["relation"]: link["url"] for link in first["link"]}
    assert set(links) == {"self", "next"}
    second = (await client.get(links["next"])).json()
    third = (await client.get({lk["relation"]: lk["url"] for lk in second["link"]}["next"])).json()
    ids = [e["resource"]["id"] for page in (first, second, third) for e in page["entry"]]
    assert ids == sorted(ids)
    assert len(set(ids)) == 9
    assert {lk["relation"] for lk in third["link"]} == {"self", "previous"}
    assert (await client.get("/Procedure", params={"_summary": "count"})).json() == {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": 9,
    }
    lenient = (
        await client.get(
            "/Procedure",
            params={"shoeSize": "44", "_count": "1"},
            headers={"prefer": "handling=lenient"},
        )
    ).json()
    assert lenient["entry"][-1]["search"]["mode"] == "outcome"
    assert "shoeSize" in lenient["entry"][-1]["resource"]["issue"][0]["diagnostics"]
    strict = await client.get("/Procedure", params={"shoeSize": "44"})  # strict by default
    assert strict.status_code == 400
    assert (await client.get("/Procedure", params={"_lastUpdated": "ge2020-01-01"})).json()[
        "total"
    ] == 9
    assert (await client.get("/Procedure", params={"_lastUpdated": "lt2020-01-01"})).json()[
        "total"
    ] == 0
    assert (await client.get("/Procedure", params={"_lastUpdated": "gequarter"})).status_code == 400


async def test_chained_search_include_and_everything(client: httpx.AsyncClient) -> None:
    await post_bundle(client, "b-psychiatry-revoked-consent")
    await post_bundle(client, "a-primary-care")
    chained = (
        await client.get(
            "/Procedure",
            params={
                "patient.identifier": "http://electronichealth.se/identifier/samordningsnummer|199103744521"
            },
        )
    ).json()
    assert chained["total"] == 9
    with_patient = (
        await client.get(
            "/Procedure",
            params={
                "patient.identifier": "199103744521",
                "_include": "Procedure:patient",
                "_count": "2",
            },
        )
    ).json()
    modes = [e["search"]["mode"] for e in with_patient["entry"]]
    assert modes == ["match", "match", "include"]
    assert with_patient["entry"][-1]["resource"]["resourceType"] == "Patient"
    patient_id = with_patient["entry"][-1]["resource"]["id"]
    everything = (await client.get(f"/Patient/{patient_id}/$everything")).json()
    kinds = sorted(e["resource"]["resourceType"] for e in everything["entry"])
    assert kinds.count("Procedure") == 9
    assert kinds.count("Consent") == 2
    assert {
        "Patient",
        "EpisodeOfCare",
        "CareTeam",
        "CarePlan",
        "Communication",
        "Organization",
        "PractitionerRole",
    } <= set(kinds)
    assert len(kinds) == 22  # exactly case b: nothing of case a
    assert (
        await client.get("/Procedure", params={"_include": "Procedure:performer"})
    ).status_code == 400


async def test_everything_holds_the_worklist_task_of_the_patient(
    client: httpx.AsyncClient,
) -> None:
    """The early-identification Task that led to the case is the patient's data too."""
    await post_bundle(client, "b-psychiatry-revoked-consent")
    await post_bundle(client, "a-primary-care")
    patients = (await client.get("/Patient", params={"identifier": "199103744521"})).json()
    patient_id = patients["entry"][0]["resource"]["id"]
    other_id = next(
        e["resource"]["id"]
        for e in (await client.get("/Patient")).json()["entry"]
        if e["resource"]["id"] != patient_id
    )
    before = (await client.get(f"/Patient/{patient_id}/$everything")).json()
    owner = next(
        e["resource"]["id"]
        for e in before["entry"]
        if e["resource"]["resourceType"] == "Organization"
        and any(i.get("system") == "urn:oid:1.2.752.29.4.19" for i in e["resource"]["identifier"])
    )
    task = json.loads((FIXTURES / "valid" / "task-for.json").read_text(encoding="utf-8"))
    task["owner"] = {"reference": f"Organization/{owner}"}
    for subject in (patient_id, other_id):
        task["for"] = {"reference": f"Patient/{subject}"}
        stored = await client.post("/Task", json=task, headers=FHIR_JSON)
        assert stored.status_code == 201, stored.text
    after = (await client.get(f"/Patient/{patient_id}/$everything")).json()
    tasks = [e["resource"] for e in after["entry"] if e["resource"]["resourceType"] == "Task"]
    assert [t["for"]["reference"] for t in tasks] == [f"Patient/{patient_id}"]
    assert len(after["entry"]) == len(before["entry"]) + 1


async def test_prefer_return(client: httpx.AsyncClient) -> None:
    patient = json.loads(
        (FIXTURES / "valid" / "patient-personnummer-system.json").read_text(encoding="utf-8")
    )
    minimal = await client.post(
        "/Patient", json=patient, headers={**FHIR_JSON, "prefer": "return=minimal"}
    )
    assert (minimal.status_code, minimal.content) == (201, b"")
    assert minimal.headers["location"].startswith("Patient/")
    told = await client.put(
        "/" + minimal.headers["location"].split("/_history")[0],
        json={**patient, "id": minimal.headers["location"].split("/")[1]},
        headers={**FHIR_JSON, "prefer": "return=OperationOutcome"},
    )
    assert told.json()["resourceType"] == "OperationOutcome"
    assert told.json()["issue"][0]["severity"] == "information"


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("/Procedure?date=ge2025-05-01", 4),  # 05-06, 05-20, 06-03, 06-10
        ("/Procedure?date=2025-04-08", 1),  # the avstämningsmöte
        ("/Procedure?date=le2025-03-12", 1),
        ("/Procedure?date=gt2025-06-10", 0),
        ("/Procedure?date=lt2025-03-12", 0),
        ("/Procedure?date=2025-03", 4),
        ("/Communication?sent=2025-03-14", 1),
        ("/EpisodeOfCare?date=ge2025-04-01", 1),  # an open period reaches on
        ("/Consent?date=2025-03-12", 2),
    ],
)
async def test_date_search_with_prefixes(
    client: httpx.AsyncClient, query: str, expected: int
) -> None:
    await post_bundle(client, "b-psychiatry-revoked-consent")
    answer = await client.get(query)
    assert answer.status_code == 200, answer.text
    assert answer.json()["total"] == expected


async def test_the_access_log_masks_patient_numbers(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="reko_fhir.access"):
        await client.get("/Procedure", params={"patient.identifier": "197804122385"})
    assert "GET /Procedure?patient.identifier=19780412-**** 200" in caplog.text
    assert "197804122385" not in caplog.text
