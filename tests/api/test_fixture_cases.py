"""Issue 4's acceptance: every golden case, POSTed as its transaction Bundle in JSON or in XML,
comes back by search, in JSON and in XML, on SQLite and on PostgreSQL.

The cases are the folders of ``fixtures/mapping`` (found, not listed). Each entry of a case is
a conditional update (``PUT Procedure?identifier=…``): its own condition is the search that
must find it, exactly once, with the content that was sent.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from reko_fhir.rest.negotiation import read_body
from tests.api.test_api import client  # noqa: F401 - the fixture: SQLite and PostgreSQL
from tests.golden import FIXTURES

CASES = sorted(p.parent.name for p in (FIXTURES / "mapping").glob("*/expected.json"))
Json = dict[str, Any]


def _without_server_fields(resource: Json) -> Json:
    """The content as sent: the server adds id and meta.versionId/lastUpdated, and rewrites
    urn:uuid references to the ids it gave."""
    kept = {k: v for k, v in resource.items() if k not in ("id", "meta")}
    profiles = (resource.get("meta") or {}).get("profile")
    return {**kept, "meta": {"profile": profiles}} if profiles else kept


def _same_shape(sent: Json, found: Json, ids: dict[str, str]) -> None:
    text = json.dumps(_without_server_fields(sent))
    for urn, ref in ids.items():
        text = text.replace(urn, ref)
    assert _without_server_fields(found) == json.loads(text)


@pytest.mark.parametrize("sent_as", ["json", "xml"])
@pytest.mark.parametrize("case", CASES)
async def test_a_case_posted_as_a_transaction_comes_back_by_search(
    client: httpx.AsyncClient,  # noqa: F811 - the imported fixture
    case: str,
    sent_as: str,
) -> None:
    folder = FIXTURES / "mapping" / case
    bundle = json.loads((folder / "expected.json").read_text(encoding="utf-8"))
    body = (folder / f"expected.{sent_as}").read_bytes()
    answer = await client.post(
        "/", content=body, headers={"content-type": f"application/fhir+{sent_as}"}
    )
    assert answer.status_code == 200, answer.text
    response = answer.json()
    assert response["type"] == "transaction-response"
    assert [e["response"]["status"][:3] for e in response["entry"]] == ["201"] * len(
        bundle["entry"]
    )
    ids = {
        entry["fullUrl"]: done["response"]["location"].split("/_history")[0]
        for entry, done in zip(bundle["entry"], response["entry"], strict=True)
    }

    for entry in bundle["entry"]:
        kind, query = entry["request"]["url"].split("?", 1)
        as_json = await client.get(f"/{kind}?{query}")
        as_xml = await client.get(f"/{kind}?{query}&_format=xml")
        assert as_json.status_code == as_xml.status_code == 200
        assert as_xml.headers["content-type"].startswith("application/fhir+xml")
        for found in (as_json.json(), read_body(as_xml.content, "application/fhir+xml")):
            assert found["total"] == 1, f"{entry['request']['url']} found {found['total']}"
            resource = found["entry"][0]["resource"]
            assert f"{kind}/{resource['id']}" == ids[entry["fullUrl"]]
            _same_shape(entry["resource"], resource, ids)
