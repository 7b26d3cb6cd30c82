"""The CapabilityStatement states exactly what the server does (issue 12, point 6): it is made
from the tables the router serves, every interaction, parameter, ``_include`` and operation it
lists answers, what it leaves out is refused, it validates against the R4 core with the
project's own validator, and links and ``fullUrl``s are absolute from the request's base."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from reko_fhir.config import Settings
from reko_fhir.validation.service import ValidationService, reko_definitions
from tests.api.test_api import _serving, client, post_bundle  # noqa: F401 - SQLite and PG

SAMPLES = {"token": "x", "reference": "Patient/x", "date": "ge2025-01-01", "number": "gt30"}
RESULT = {"_count": "2", "_offset": "0", "_total": "accurate", "_summary": "count"}


def _ignored(bundle: dict[str, object]) -> list[str]:
    return [
        entry["resource"]["issue"][0]["diagnostics"]  # type: ignore[index]
        for entry in bundle.get("entry", [])  # type: ignore[attr-defined]
        if entry["search"]["mode"] == "outcome"
    ]


async def test_every_listed_search_parameter_is_searched_on(
    client: httpx.AsyncClient,  # noqa: F811
) -> None:
    statement = (await client.get("/metadata")).json()
    checked = 0
    for resource in statement["rest"][0]["resource"]:
        kind = resource["type"]
        for parameter in resource.get("searchParam", []):  # the Measure is read, not searched
            name = parameter["name"]
            if name == "_sort":  # the keys it takes are in its documentation
                keys = parameter["documentation"].split("Sort on ")[1].split(" (")[0]
                values = keys.split(", ")
            else:
                values = [RESULT.get(name) or SAMPLES[parameter["type"]]]
            for value in values:
                answer = await client.get(f"/{kind}", params={name: value})
                assert answer.status_code == 200, (kind, parameter, value, answer.text)
                assert _ignored(answer.json()) == [], (kind, parameter)
                checked += 1
        for include in resource.get("searchInclude", []):
            answer = await client.get(f"/{kind}", params={"_include": include})
            assert answer.status_code == 200, (kind, include, answer.text)
        if "searchParam" in resource:
            unlisted = await client.get(f"/{kind}", params={"shoeSize": "44"})
            assert unlisted.status_code == 400, (kind, unlisted.text)
    assert checked > 100
    listed = {
        r["type"]: {p["name"] for p in r.get("searchParam", [])}
        for r in statement["rest"][0]["resource"]
    }
    assert {"date", "_lastUpdated", "patient", "identifier", "_sort", "_count"} <= listed[
        "Procedure"
    ]
    assert {"sent", "_lastUpdated", "_total"} <= listed["Communication"]
    # What the issue saw over-reported: none of these is searched on these types.
    for kind in ("Patient", "Organization", "PractitionerRole"):
        assert not {"status", "subject", "patient", "code", "category", "date"} & listed[kind]


async def test_each_interaction_and_operation_listed_is_served(
    client: httpx.AsyncClient,  # noqa: F811
) -> None:
    await post_bundle(client, "b-psychiatry-revoked-consent")
    statement = (await client.get("/metadata")).json()
    rest = statement["rest"][0]
    assert [i["code"] for i in rest["interaction"]] == ["transaction", "batch", "history-system"]
    history = await client.get("/_history")
    assert history.status_code == 200
    assert history.json()["type"] == "history"
    kinds_seen = [e["resource"]["resourceType"] for e in history.json()["entry"]]
    # Every version of the case's 22 resources, and the Provenance of each write.
    assert len(kinds_seen) - kinds_seen.count("Provenance") == kinds_seen.count("Provenance") == 22
    batch = await client.post("/", json={"resourceType": "Bundle", "type": "batch"})
    assert batch.status_code == 200
    kinds = {r["type"]: r for r in rest["resource"]}
    assert [o["name"] for o in kinds["Patient"]["operation"]] == ["validate", "everything"]
    patient = (await client.get("/Patient")).json()["entry"][0]["resource"]["id"]
    assert (await client.get(f"/Patient/{patient}/$everything")).status_code == 200
    # An operation not listed for a type is not served on it.
    assert "everything" not in {o["name"] for o in kinds["Procedure"]["operation"]}
    assert (await client.get("/Procedure/x/$everything")).status_code == 405
    assert [o["name"] for o in kinds["Measure"]["operation"]] == ["evaluate-measure"]
    evaluated = await client.get(
        "/Measure/kva-statistik/$evaluate-measure",
        params={"periodStart": "2025-03-01", "periodEnd": "2025-03-31"},
    )
    assert evaluated.json()["group"][0]["population"][0]["count"] == 3  # case b's March GC001s
    assert (await client.get("/Measure/kva-statistik/$everything")).status_code == 405
    for kind, resource in kinds.items():
        codes = {i["code"] for i in resource["interaction"]}
        if "history-type" in codes:
            assert (await client.get(f"/{kind}/_history")).status_code == 200, kind
        if "search-type" in codes:
            assert (await client.get(f"/{kind}")).status_code == 200, kind
        if "create" not in codes:  # Provenance, AuditEvent: not written here
            refused = await client.post(f"/{kind}", json={"resourceType": kind})
            assert refused.status_code == 405, kind


async def test_it_validates_against_the_r4_core_with_the_projects_validator(
    client: httpx.AsyncClient,  # noqa: F811
) -> None:
    statement = (await client.get("/metadata")).json()
    service = ValidationService(reko_definitions())
    core = "http://hl7.org/fhir/StructureDefinition/CapabilityStatement"
    errors = [i for i in service.validate(statement, core) if i.is_error]
    assert errors == []
    assert statement["implementation"]["url"] == "http://reko.test"


async def test_links_and_full_urls_are_absolute_from_the_base(
    client: httpx.AsyncClient,  # noqa: F811
) -> None:
    await post_bundle(client, "b-psychiatry-revoked-consent")
    found = (await client.get("/Procedure", params={"_count": "2"})).json()
    assert all(e["fullUrl"].startswith("http://reko.test/Procedure/") for e in found["entry"])
    assert {lk["relation"]: lk["url"] for lk in found["link"]}["next"].startswith(
        "http://reko.test/Procedure?"
    )
    history = (await client.get("/Patient/_history")).json()
    assert history["entry"][0]["fullUrl"].startswith("http://reko.test/Patient/")
    answered = (await post_bundle(client, "b-psychiatry-revoked-consent")).json()
    assert all(e["fullUrl"].startswith("http://reko.test/") for e in answered["entry"])
    # X-Forwarded-* is not trusted unless configured: a client cannot choose the links' host.
    forged = await client.get("/Procedure", headers={"x-forwarded-host": "evil.example"})
    assert "evil.example" not in forged.text


@pytest.fixture
async def behind_proxy(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with _serving(Settings(data_dir=tmp_path, trust_forwarded=True)) as http:
        yield http


async def test_forwarded_headers_make_the_base_when_configured(
    behind_proxy: httpx.AsyncClient,
) -> None:
    await post_bundle(behind_proxy, "b-psychiatry-revoked-consent")
    proxy = {
        "x-forwarded-proto": "https",
        "x-forwarded-host": "fhir.region.se",
        "x-forwarded-prefix": "/reko",
    }
    found = (await behind_proxy.get("/Procedure", params={"_count": "1"}, headers=proxy)).json()
    assert found["entry"][0]["fullUrl"].startswith("https://fhir.region.se/reko/Procedure/")
    assert found["link"][0]["url"].startswith("https://fhir.region.se/reko/Procedure?")
    # A header that is no host is not put into links.
    odd = {"x-forwarded-host": "a b<script>", "x-forwarded-proto": "javascript"}
    plain = (await behind_proxy.get("/Procedure", params={"_count": "1"}, headers=odd)).json()
    assert plain["link"][0]["url"].startswith("http://reko.test/Procedure?")
