"""``_total`` (https://hl7.org/fhir/R4/search.html#total): a search counts its matches up to a
limit unless asked for an accurate count, so a broad first page stays fast at 1M rows.

Case b holds nine Procedures of one patient; the limit is lowered to show what lies beyond it.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from reko_fhir.store import unit
from tests.api.test_api import client, post_bundle  # noqa: F401 - the fixture: SQLite and PG

CASE = "b-psychiatry-revoked-consent"


async def _case(client: httpx.AsyncClient) -> str:  # noqa: F811
    assert (await post_bundle(client, CASE)).status_code == 200
    return str((await client.get("/Patient")).json()["entry"][0]["resource"]["id"])


def _relations(bundle: dict[str, Any]) -> set[str]:
    return {link["relation"] for link in bundle["link"]}


async def test_beyond_the_count_limit_total_is_left_out_unless_asked_for(
    client: httpx.AsyncClient,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    await _case(client)
    monkeypatch.setattr(unit, "COUNT_LIMIT", 3)

    broad = (await client.get("/Procedure")).json()
    assert "total" not in broad
    assert len(broad["entry"]) == 9
    assert _relations(broad) == {"self"}  # a page shorter than _count is the last
    first = (await client.get("/Procedure", params={"_count": "4"})).json()
    assert "total" not in first
    assert len(first["entry"]) == 4
    assert _relations(first) == {"self", "next"}  # a full page without a total has a next one
    asked = {"_total": "accurate", "_count": "4"}
    assert (await client.get("/Procedure", params=asked)).json()["total"] == 9
    assert (await client.get("/Procedure", params={"_summary": "count"})).json()["total"] == 9


async def test_a_patients_matches_are_counted_exactly_whatever_the_limit(
    client: httpx.AsyncClient,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    patient = await _case(client)
    monkeypatch.setattr(unit, "COUNT_LIMIT", 1)
    found = (await client.get("/Procedure", params={"patient": patient, "_count": "2"})).json()
    assert found["total"] == 9
    assert len(found["entry"]) == 2
    assert _relations(found) == {"self", "next"}


async def test_within_the_limit_total_is_exact_and_none_leaves_it_out(
    client: httpx.AsyncClient,  # noqa: F811
) -> None:
    await _case(client)
    assert (await client.get("/Procedure")).json()["total"] == 9
    assert (await client.get("/Procedure", params={"_total": "estimate"})).json()["total"] == 9
    none = (await client.get("/Procedure", params={"_total": "none", "_count": "9"})).json()
    assert "total" not in none
    assert len(none["entry"]) == 9
    assert _relations(none) == {"self", "next"}  # nothing counted: a full page has a next one


async def test_an_unknown_total_mode_is_refused(client: httpx.AsyncClient) -> None:  # noqa: F811
    answer = await client.get("/Procedure", params={"_total": "roughly"})
    assert answer.status_code == 400
    issue = answer.json()["issue"][0]
    assert issue["expression"] == ["_total"]
    assert "none, estimate, accurate" in issue["diagnostics"]
