"""Case transaction Bundles over HTTP, on SQLite and PostgreSQL: what they send to the database
(issue 15: each condition looked for once per Bundle, the consent rules and the guard reading
each resource once), and the answers that must not change with it."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import event

from reko_fhir.api import create_app
from reko_fhir.config import Settings
from reko_fhir.security.tokens import LocalSigningKey
from reko_fhir.store import SqlRepository
from tests.golden import FIXTURES
from tests.store.conftest import postgres_schema

UNIT = "SE2321000016-VC01"  # case a's own care unit: its Organization is the unit's own
CASE = json.loads((FIXTURES / "mapping" / "a-primary-care" / "expected.json").read_text())
MINIMAL = {"prefer": "return=minimal"}


def new_case(personnummer: str, run: str) -> dict[str, Any]:
    """Case a as another patient's: a new personnummer and new case identifiers (references
    are the Bundle's urn:uuid fullUrls, so they follow)."""
    text = json.dumps(CASE).replace("197804122385", personnummer)
    for value in ("REKO-2025-0042", "SAM-0042-1", "PLAN-0042-1", "J-88"):
        text = text.replace(value, f"{value}-{run}")
    case: dict[str, Any] = json.loads(text)
    return case


@pytest.fixture(params=["sqlite", "postgresql"])
async def served(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[tuple[httpx.AsyncClient, SqlRepository]]:
    """The app with a care unit's token (as the bench's clients), and its store."""
    if request.param == "sqlite":
        async with _serving(Settings(data_dir=tmp_path)) as served:
            yield served
        return
    async with (
        postgres_schema() as url,
        _serving(Settings(data_dir=tmp_path, database_url=url)) as served,
    ):
        yield served


@contextmanager
def _statements(store: SqlRepository) -> Iterator[list[str]]:
    sent: list[str] = []

    def before(*args: Any) -> None:
        sent.append(" ".join(str(args[2]).split()))

    event.listen(store.engine.sync_engine, "before_cursor_execute", before)
    try:
        yield sent
    finally:
        event.remove(store.engine.sync_engine, "before_cursor_execute", before)


@asynccontextmanager
async def _serving(settings: Settings) -> AsyncIterator[tuple[httpx.AsyncClient, SqlRepository]]:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        key = LocalSigningKey.load_or_create(settings.data_dir)
        token = key.mint("system/*.cruds", subject=UNIT, care_unit=UNIT, lifetime=3600)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://reko.test",
            headers={"authorization": f"Bearer {token}"},
        ) as http:
            yield http, app.state.repository


async def _sent(
    http: httpx.AsyncClient, store: SqlRepository, bundle: dict[str, Any]
) -> tuple[list[str], list[str]]:
    """Every statement the Bundle sends (its access-log record included), and its statuses."""
    with _statements(store) as sent:
        answer = await http.post("/", json=bundle, headers=MINIMAL)
        await asyncio.sleep(0.2)  # an access-log record written after the answer
    assert answer.status_code == 200, answer.text[:300]
    return sent, [e["response"]["status"] for e in answer.json()["entry"]]


async def test_a_case_bundle_sends_few_statements_and_reads_each_thing_once(
    served: tuple[httpx.AsyncClient, SqlRepository],
) -> None:
    """A new patient's case (17 entries; the unit's Organizations and PractitionerRoles stored
    before, unchanged) and a resend of a stored case. Before issue 15's third round the new case
    read 75 times (each condition looked for twice, before the lock and in it, then again amid
    the writes; the patient read again for every entry, the directory for every role)."""
    http, store = served
    await _sent(http, store, CASE)  # the unit's directory, and a first case

    sent, statuses = await _sent(http, store, new_case("191212121212", "b"))
    reads = [s for s in sent if s.startswith("SELECT")]
    ok, created = ["200 OK"], ["201 Created"]
    assert statuses == ok * 2 + created + ok * 3 + created * 11  # the directory unchanged
    # Every condition in one query before the lock and one in it; nothing else is read (a new
    # patient has no consents stored), so nothing between the writes.
    assert len(reads) == 2, reads
    assert len(sent) <= 110, len(sent)  # BEGINs, and 12 resources with their Provenance

    resent, statuses = await _sent(http, store, CASE)
    assert statuses == ["200 OK"] * 17
    # The conditions twice, and the patient's stored consents and episodes once.
    assert len([s for s in resent if s.startswith("SELECT")]) == 3, resent
    assert len(resent) <= 10, resent  # and its access-log record


async def test_two_entries_under_one_condition_store_one_resource(
    served: tuple[httpx.AsyncClient, SqlRepository],
) -> None:
    """The second entry's condition matched nothing when the Bundle was resolved, but the first
    entry's write matches it: it finds that resource, as a create under it always did."""
    http, _ = served
    patient = next(e for e in CASE["entry"] if e["resource"]["resourceType"] == "Patient")
    again = {**patient, "fullUrl": "urn:uuid:00000000-0000-4000-8000-000000000001"}
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [patient, again]}
    answer = await http.post("/", json=bundle)
    assert answer.status_code == 200, answer.text[:300]
    first, second = answer.json()["entry"]
    assert first["response"]["status"] == "201 Created"
    assert second["response"]["status"] == "200 OK"
    assert first["fullUrl"] == second["fullUrl"]
    assert (await http.get("/Patient")).json()["total"] == 1
