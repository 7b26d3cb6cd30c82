"""Operators' side of delivery: /healthz, /readyz, /metrics, dead letters over HTTP and with
``reko-fhir outbox``. The outbox is filled by a worker, as a separate worker process would."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from reko_fhir.api import create_app
from reko_fhir.cli import app as cli
from reko_fhir.config import Settings
from reko_fhir.delivery.errors import DeliveryError
from reko_fhir.delivery.worker import Worker
from reko_fhir.store import SqlRepository
from reko_fhir.store.outbox import Message, Subscription
from tests.api.test_api import platform_token
from tests.delivery.test_outbox import Recorder
from tests.writes import put


def refuse_p2(message: Message) -> None:
    if message.resource_id == "p2":
        raise DeliveryError("HTTP 422: Patient.name is required", status=422)


async def fill_outbox(data_dir: Path) -> None:
    """Patients p1 (delivered) and p2 (refused: a dead letter) for target 'ehr'."""
    data_dir.mkdir(parents=True, exist_ok=True)
    url = f"sqlite+aiosqlite:///{data_dir / 'reko.sqlite3'}"
    repo = await SqlRepository.open(url, subscriptions=[Subscription("ehr", frozenset())])
    try:
        for n in (1, 2):
            await put(repo, {"resourceType": "Patient", "id": f"p{n}", "active": True})
        await Worker(repo, {"ehr": Recorder("ehr", script=refuse_p2)}).drain(timeout=30)
    finally:
        await repo.close()


@pytest.fixture
async def http(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    await fill_outbox(tmp_path)
    app = create_app(Settings(data_dir=tmp_path))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport,
            base_url="http://reko.test",
            headers={"authorization": f"Bearer {platform_token(tmp_path)}"},
        ) as client:
            yield client


async def test_health_readiness_and_metrics(http: httpx.AsyncClient) -> None:
    assert (await http.get("/healthz")).json() == {"status": "alive"}
    assert (await http.get("/readyz")).status_code == 200
    scraped = (await http.get("/metrics")).text
    assert 'reko_outbox_depth{status="dead",target="ehr"} 1.0' in scraped
    assert 'reko_outbox_depth{status="delivered",target="ehr"} 1.0' in scraped


async def test_dead_letters_are_listed_shown_edited_replayed_and_purged(
    http: httpx.AsyncClient,
) -> None:
    (dead,) = (await http.get("/_outbox/messages")).json()["messages"]
    assert dead["resource"] == "Patient/p2/_history/1"
    assert dead["deadReason"] == "rejected"
    shown = (await http.get(f"/_outbox/messages/{dead['id']}")).json()
    assert [(a["result"], a["status"]) for a in shown["attemptLog"]] == [("dead", 422)]
    assert "Patient.name is required" in shown["attemptLog"][0]["reason"]

    wrong = await http.post(
        f"/_outbox/messages/{dead['id']}/$replay", json={"resourceType": "Procedure"}
    )
    assert wrong.status_code == 400
    assert wrong.json()["issue"][0]["expression"] == ["resourceType"]
    # An edited replay is validated like any write: an invalid one is refused, nothing queued.
    invalid = {"resourceType": "Patient", "id": "p2", "active": True, "name": [{"text": "P"}]}
    refused = await http.post(f"/_outbox/messages/{dead['id']}/$replay", json=invalid)
    assert refused.status_code == 422
    assert refused.json()["issue"][0]["expression"] == ["Patient.identifier"]
    assert (await http.get("/_outbox/messages", params={"status": "pending"})).json()[
        "messages"
    ] == []
    edited = {
        **invalid,
        "identifier": [
            {
                "system": "http://electronichealth.se/identifier/personnummer",
                "value": "197804122385",
            }
        ],
    }
    replayed = await http.post(f"/_outbox/messages/{dead['id']}/$replay", json=edited)
    assert replayed.json() == {"replayed": 1}
    (pending,) = (await http.get("/_outbox/messages", params={"status": "pending"})).json()[
        "messages"
    ]
    assert pending["id"] == dead["id"]
    assert (await http.get(f"/_outbox/messages/{dead['id']}")).json()["payload"] == edited

    again = await http.post(f"/_outbox/messages/{dead['id']}/$replay")
    assert again.status_code == 404  # no longer a dead letter
    purged = await http.post("/_outbox/$purge", params={"status": "delivered"})
    assert purged.json() == {"purged": 1}


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/_outbox/messages?status=lost", 400),
        ("/_outbox/messages/abc", 400),
        ("/_outbox/messages/999", 404),
    ],
)
async def test_bad_operator_requests_get_an_operation_outcome(
    http: httpx.AsyncClient, path: str, status: int
) -> None:
    answer = await http.get(path)
    assert answer.status_code == status
    assert answer.json()["resourceType"] == "OperationOutcome"
    assert answer.json()["issue"][0]["diagnostics"]


def test_the_outbox_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    asyncio.run(fill_outbox(tmp_path))
    monkeypatch.setenv("REKO_DATA_DIR", str(tmp_path))
    runner = CliRunner()
    listed = runner.invoke(cli, ["outbox", "list"])
    assert listed.exit_code == 0, listed.output
    (dead,) = json.loads(listed.output)["messages"]
    shown = json.loads(runner.invoke(cli, ["outbox", "show", str(dead["id"])]).output)
    assert shown["attemptLog"][0]["status"] == 422
    missing = runner.invoke(cli, ["outbox", "show", "999"])
    assert missing.exit_code == 1
    assert json.loads(missing.output)["resourceType"] == "OperationOutcome"
    assert runner.invoke(cli, ["outbox", "retry"]).exit_code == 2  # says what to replay
    retried = runner.invoke(cli, ["outbox", "retry", "--target", "ehr"])
    assert json.loads(retried.output) == {"replayed": 1}
    everything = runner.invoke(cli, ["outbox", "list", "--status", "pending"])
    assert [m["id"] for m in json.loads(everything.output)["messages"]] == [dead["id"]]
    purged = runner.invoke(cli, ["outbox", "purge", "--status", "delivered"])
    assert json.loads(purged.output) == {"purged": 1}
