"""The worklist on a real ``reko-fhir serve`` (SQLite and PostgreSQL): imported into the same
database, served as ``GET /Task`` to its unit only, rejected with a reason that survives the
next import, accepted when a case starts through the API, and read by ``reko-fhir worklist``
— every read in the access log."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import pytest

from reko_fhir.config import Settings
from reko_fhir.domain import HsaId
from reko_fhir.mapping import codings as c
from reko_fhir.mapping import worklist as wl
from reko_fhir.store import SqlRepository
from reko_fhir.worklist import WorklistChanges, import_sick_leaves
from tests.isolation.conftest import BACKENDS, UNIT_A, UNIT_B, Server, start
from tests.worklist.certificates import certificate, episode, patient

TODAY = date.today()
A, B = HsaId(UNIT_A), HsaId(UNIT_B)
P1, P2, P3 = patient(11), patient(12), patient(13)
FEED = [
    certificate("s1", P1, TODAY - timedelta(days=20), TODAY + timedelta(days=20), unit=A),
    certificate("s2", P2, TODAY - timedelta(days=5), TODAY + timedelta(days=60), 50, unit=A),
    certificate("s3", P3, TODAY - timedelta(days=40), TODAY - timedelta(days=2), unit=A),
]
WORKLIST = (("code", wl.TASK_TOKEN), ("status", "requested"))


@pytest.fixture(scope="module", params=BACKENDS)
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    with start(request.param, tmp_path_factory.mktemp(f"worklist-{request.param}")) as running:
        yield running


def env_of(server: Server) -> dict[str, str]:
    extra = {"REKO_DATABASE_URL": server.database_url} if server.database_url else {}
    return {**os.environ, "REKO_DATA_DIR": str(server.service.data_dir), **extra}


def run_import(server: Server, unit: HsaId = A) -> WorklistChanges:
    """The import against the server's own database, as the feed's command runs it."""
    settings = Settings(_env_file=None, **_settings_of(server))  # type: ignore[call-arg]

    async def work() -> WorklistChanges:
        store = await SqlRepository.open(settings.sqlalchemy_url())
        try:
            return await import_sick_leaves(store, unit, FEED, today=TODAY)
        finally:
            await store.close()

    return asyncio.run(work())


def _settings_of(server: Server) -> dict[str, Any]:
    if server.database_url:
        return {"database_url": server.database_url, "data_dir": server.service.data_dir}
    return {"data_dir": server.service.data_dir}


def worklist(server: Server, who: str, **extra: str) -> list[dict[str, Any]]:
    answer = server.get(
        who, "/Task", params={**dict(WORKLIST), "_sort": "sick-leave-start", **extra}
    )
    assert answer.status_code == 200, answer.text
    return [e["resource"] for e in answer.json().get("entry", []) if e["search"]["mode"] == "match"]


def test_the_worklist_end_to_end(server: Server) -> None:
    first = run_import(server)
    assert (first.created, first.unchanged) == (2, 0)  # s3 has ended: no candidate
    tasks = worklist(server, "A")
    assert [wl.task_input(t, wl.START) for t in tasks] == [
        (TODAY - timedelta(days=20)).isoformat(),
        (TODAY - timedelta(days=5)).isoformat(),
    ]
    owner = tasks[0]["owner"]["reference"]
    by_owner = worklist(server, "A", owner=owner, _sort="-sick-leave-length")
    assert [wl.task_input(t, wl.DAYS) for t in by_owner] == [66, 41]

    # Unit B sees nothing of unit A's worklist, not even by id.
    assert worklist(server, "B") == []
    assert server.get("B", f"/Task/{tasks[0]['id']}").status_code == 404
    assert server.get("B", "/Task", params={"owner": owner}).json()["total"] == 0

    # A coordinator of A rejects the first candidate; a rejection needs its reason.
    rejected = {k: v for k, v in tasks[0].items() if k != "meta"} | {"status": "rejected"}
    bare = server.request("A", "PUT", f"/Task/{tasks[0]['id']}", rejected)
    assert bare.status_code == 422, bare.text
    rejected["statusReason"] = c.concept(c.CS_EXCLUSION, "sysselsattning-ej-arbete")
    answer = server.request("A", "PUT", f"/Task/{tasks[0]['id']}", rejected)
    assert answer.status_code == 200, answer.text
    again = run_import(server)
    assert (again.created, again.updated, again.unchanged, again.closed) == (0, 0, 2, {})
    kept = server.get("A", f"/Task/{tasks[0]['id']}").json()
    assert (kept["status"], kept["meta"]["versionId"]) == ("rejected", "2")

    # A case started for the second patient through the API accepts their Task at once.
    case = episode(tasks[1]["for"]["reference"], owner)
    answer = server.request("A", "POST", "/EpisodeOfCare", case)
    assert answer.status_code == 201, answer.text
    accepted = server.get("A", f"/Task/{tasks[1]['id']}").json()
    assert accepted["status"] == "accepted"
    history = server.get("A", f"/Task/{tasks[1]['id']}/_history").json()
    assert [e["resource"]["status"] for e in history["entry"]] == ["accepted", "requested"]
    assert worklist(server, "A") == []

    # The command shows the unit's worklist with the REKO status and Rehabstöd's id.
    shown = subprocess.run(
        [
            sys.executable,
            "-m",
            "reko_fhir",
            "worklist",
            "--unit",
            UNIT_A,
            "--status",
            "all",
            "--format",
            "json",
        ],
        env=env_of(server),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert shown.returncode == 0, shown.stderr
    rows = json.loads(shown.stdout)
    assert [
        (r["patient"], r["status"], r["reko_status"], r["rehabstod_status"], r["reason"])
        for r in rows
    ] == [
        (P1.value, "rejected", "ingen", "REKO_1", "sysselsattning-ej-arbete"),
        (P2.value, "accepted", "aktiv", "REKO_3", None),
    ]
    table = subprocess.run(
        [sys.executable, "-m", "reko_fhir", "worklist", "--unit", UNIT_A, "--status", "all"],
        env=env_of(server),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert table.returncode == 0, table.stderr
    assert "REKO_3" in table.stdout
    assert P1.value in table.stdout
    assert P1.value not in table.stderr  # nothing of the personnummer goes to the log

    # The access log holds the API's worklist searches and the command's reads, for unit A.
    events = server.get(
        "A admin", "/AuditEvent", params={"patient": tasks[0]["for"]["reference"], "_count": "200"}
    )
    assert events.status_code == 200, events.text
    found = [e["resource"] for e in events.json().get("entry", [])]
    queries = [
        base64.b64decode(entity["query"]).decode()
        for event in found
        for entity in event.get("entity", [])
        if "query" in entity
    ]
    assert any("sick-leave-start" in q for q in queries)  # GET /Task by the coordinator
    by_command = [
        e
        for e in found
        if any(
            a.get("who", {}).get("identifier", {}).get("value") == "reko-fhir worklist"
            for a in e["agent"]
        )
        and e["action"] == "R"
    ]
    assert len(by_command) == 2  # the two runs of reko-fhir worklist
