"""Search parameters (issue 12, point 5): a parameter a type does not serve answers 400 naming
it, unless ``Prefer: handling=lenient``; then it is ignored and the self link lists only what
was applied. ``_sort`` takes every date and token parameter a type serves."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest

from reko_fhir.rest.searchparams import RESOURCE_TYPES, search_parameters, sort_keys
from tests.api.test_api import client, post_bundle  # noqa: F401 - the fixture: SQLite and PG

LENIENT = {"prefer": "handling=lenient"}


def _self(bundle: dict[str, object]) -> list[tuple[str, str]]:
    url = next(lk["url"] for lk in bundle["link"] if lk["relation"] == "self")  # type: ignore[attr-defined,index]
    return parse_qsl(urlsplit(url).query)


@pytest.mark.parametrize(
    ("target", "named"),
    [
        ("/Patient?name=Nobody", "name"),  # the EHR's search by name of the issue
        ("/Patient?status=active", "status"),  # a Patient has no status
        ("/Organization?subject=Patient/1", "subject"),
        ("/Procedure?status:missing=true", "status:missing"),  # no modifier is supported
        ("/Procedure?_elements=id", "_elements"),
        ("/Consent?code=x", "code"),
    ],
)
async def test_an_unserved_parameter_is_400_naming_it(
    client: httpx.AsyncClient,  # noqa: F811
    target: str,
    named: str,
) -> None:
    answer = await client.get(target)
    assert answer.status_code == 400, answer.text
    outcome = answer.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["expression"] == [named]
    assert f"'{named}'" in outcome["issue"][0]["diagnostics"]


async def test_lenient_ignores_it_and_the_self_link_lists_only_what_applied(
    client: httpx.AsyncClient,  # noqa: F811
) -> None:
    await post_bundle(client, "b-psychiatry-revoked-consent")
    answer = await client.get("/Patient", params={"name": "Nobody", "_count": "5"}, headers=LENIENT)
    assert answer.status_code == 200, answer.text
    bundle = answer.json()
    matches = [e for e in bundle["entry"] if e["search"]["mode"] == "match"]
    assert len(matches) == bundle["total"] == 1  # every patient: the name was not applied
    assert "name" not in dict(_self(bundle))
    notes = [e for e in bundle["entry"] if e["search"]["mode"] == "outcome"]
    assert "name" in notes[0]["resource"]["issue"][0]["diagnostics"]
    applied = await client.get(
        "/Procedure", params={"status": "completed", "shoe": "44"}, headers=LENIENT
    )
    assert dict(_self(applied.json()))["status"] == "completed"
    assert "shoe" not in dict(_self(applied.json()))


async def test_sort_takes_every_date_and_token_parameter_of_every_type(
    client: httpx.AsyncClient,  # noqa: F811
) -> None:
    await post_bundle(client, "b-psychiatry-revoked-consent")
    for kind in sorted(RESOURCE_TYPES):
        keys = sort_keys(kind)
        served = search_parameters(kind)
        assert {n for n, t in served.items() if t in ("date", "number", "token")} == set(keys)
        for key in keys:
            for spelled in (key, f"-{key}"):
                answer = await client.get(f"/{kind}", params={"_sort": spelled})
                assert answer.status_code == 200, (kind, spelled, answer.text)
                assert ("_sort", spelled) in _self(answer.json())
    assert "date" in sort_keys("Procedure")
    assert "status" in sort_keys("Procedure")
    refused = await client.get("/Procedure", params={"_sort": "subject"})  # a reference
    assert refused.status_code == 400
    assert refused.json()["issue"][0]["expression"] == ["_sort"]


async def test_sort_by_date_and_by_token_orders_the_matches(
    client: httpx.AsyncClient,  # noqa: F811
) -> None:
    await post_bundle(client, "b-psychiatry-revoked-consent")

    def dates(bundle: dict[str, object]) -> list[str]:
        return [
            e["resource"].get("performedDateTime") or e["resource"]["performedPeriod"]["start"]  # type: ignore[index]
            for e in bundle["entry"]  # type: ignore[attr-defined]
        ]

    up = (await client.get("/Procedure", params={"_sort": "date"})).json()
    down = (await client.get("/Procedure", params={"_sort": "-date"})).json()
    assert len(dates(up)) == 9
    assert dates(up) == sorted(dates(up))
    assert dates(down) == sorted(dates(down), reverse=True)
    assert dates(up) != dates(down)
    by_status = (await client.get("/Consent", params={"_sort": "status,_id"})).json()
    statuses = [e["resource"]["status"] for e in by_status["entry"]]
    assert statuses == sorted(statuses)
    reversed_ = (await client.get("/Consent", params={"_sort": "-status"})).json()
    assert [e["resource"]["status"] for e in reversed_["entry"]] == sorted(statuses, reverse=True)
