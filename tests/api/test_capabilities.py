"""The CapabilityStatement states exactly what the server does: every search parameter it
lists for a type is searched on (none is ignored as unknown), and one it does not list is
ignored and said so (or refused, by the strict access log)."""

from __future__ import annotations

import httpx

from tests.api.test_api import client  # noqa: F401 - the fixture: SQLite and PostgreSQL

SAMPLES = {"token": "x", "reference": "Patient/x", "date": "ge2025-01-01"}


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
        for parameter in resource["searchParam"]:
            value = SAMPLES[parameter["type"]]
            answer = await client.get(f"/{kind}", params={parameter["name"]: value})
            assert answer.status_code == 200, (kind, parameter, answer.text)
            assert _ignored(answer.json()) == [], (kind, parameter)
            checked += 1
        for include in resource.get("searchInclude", []):
            answer = await client.get(f"/{kind}", params={"_include": include})
            assert answer.status_code == 200, (kind, include, answer.text)
        unlisted = await client.get(f"/{kind}", params={"shoeSize": "44"})
        if kind == "AuditEvent":  # the access log is always strict
            assert unlisted.status_code == 400
        else:
            assert _ignored(unlisted.json()) == ["ignored unknown search parameters: shoeSize"]
    assert checked > 50
    listed = {
        r["type"]: {p["name"] for p in r["searchParam"]} for r in statement["rest"][0]["resource"]
    }
    assert {"date", "_lastUpdated", "patient", "identifier"} <= listed["Procedure"]
    assert {"sent", "_lastUpdated"} <= listed["Communication"]
    assert "date" not in listed["Organization"]  # no date of an Organization is indexed
