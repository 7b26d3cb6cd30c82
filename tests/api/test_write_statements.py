"""How many statements one validated write sends (issue 15: fewer, larger statements)."""

from __future__ import annotations

import copy
from typing import Any

import httpx
from sqlalchemy import event

from reko_fhir.store import SqlRepository
from tests.api.test_api import _APPS, FHIR_JSON, client, post_case

__all__ = ["client"]  # the fixture: the app on SQLite and on PostgreSQL


async def _statements_of(http: httpx.AsyncClient, method: str, url: str, body: Any) -> list[str]:
    """Every statement the store's engine sends while ``http`` answers one request."""
    store: SqlRepository = _APPS[http].state.repository
    sent: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        sent.append(statement)

    event.listen(store.engine.sync_engine, "before_cursor_execute", count)
    try:
        answer = await http.request(method, url, json=body, headers=FHIR_JSON)
    finally:
        event.remove(store.engine.sync_engine, "before_cursor_execute", count)
    assert answer.status_code in (200, 201), answer.text
    return sent


async def test_a_validated_post_sends_few_statements(client: httpx.AsyncClient) -> None:
    """A POST /Procedure with the consent rules checked against the store: the rules' reads and
    the guard's look at the Patient in one query, then the Procedure, its Provenance and its
    AuditEvent in one flush. Before: 14 statements on SQLite (an INSERT per row kind and
    resource, four reads), 12 on PostgreSQL; then 10 and 4 (the Patient read apart)."""
    ids = await post_case(client, "a-primary-care")
    patient = next(ref for ref in ids.values() if ref.startswith("Patient/"))
    found = (await client.get("/Procedure", params={"patient": patient})).json()["entry"]
    procedure = copy.deepcopy(found[0]["resource"])
    for key in ("id", "meta"):
        procedure.pop(key)
    procedure["identifier"] = [{"system": "urn:oid:1.2.752.9999.1", "value": "COUNTED-1"}]
    sent = await _statements_of(client, "POST", "/Procedure", procedure)
    inserts = [s for s in sent if "INSERT INTO" in s.upper()]
    reads = [s for s in sent if "INSERT INTO" not in s.upper() and "SELECT" in s.upper()]
    store: SqlRepository = _APPS[client].state.repository
    if store.is_sqlite:  # no multi-table insert: one executemany per table written
        assert len(inserts) == 7
        # the consent rules' context and the guard's look at the Patient: one query
        assert len(reads) == 1
        assert len(sent) <= 9
    else:  # every row of the write, its Provenance and its AuditEvent in one statement
        assert len(inserts) == 1
        assert len(reads) == 1
        assert len(sent) <= 3
