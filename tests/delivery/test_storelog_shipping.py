"""The access log shipped to the national log service (StoreLog 2.0), against real processes:
the log service stub (``tests/peers/storelog_service.py``, XSD-validating, failing at random)
and ``reko-fhir worker`` / ``reko-fhir serve`` / ``reko-fhir outbox retry`` as subprocesses.

- 2,000 AuditEvents through a log service failing 30 % of the time (503, 502, resets before
  and after it stored) and a ``kill -9`` of the worker mid-run: every one arrives, with its
  patient's personnummer, none lost; an id arrives twice only when its first answer was lost
  (reset after storing) or it was in the batch in flight at the kill.
- A batch answered with resultCode ERROR becomes dead letters; ``outbox retry`` ships them.
- ``reko-fhir serve`` queues the AuditEvent of each of its requests and ships it.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from reko_fhir.delivery.rivta.oids import PERSONNUMMER_ROOT
from reko_fhir.domain.identifiers import luhn_check_digit
from reko_fhir.security.audit import AccessRecord, AuditLog
from reko_fhir.store import SqlRepository, outbox_admin
from reko_fhir.store.audit import audit_event
from reko_fhir.store.outbox import Subscription
from tests.isolation.conftest import bare_patient
from tests.peers.storelog_service import FAILURES, storelog_service
from tests.service import start_service
from tests.store.conftest import postgres_schema
from tests.writes import put_in

REKO = Path(sys.executable).with_name("reko-fhir")
TARGET = "national-log"
ACCESS_LOG = [Subscription(TARGET, frozenset(), access_log=True)]
PNR_SYSTEM = "http://electronichealth.se/identifier/personnummer"
STAFF, UNIT = "SE2321000016-R3K7", "SE2321000016-VC01"
PLATFORM = "SE2321000016-PLAT"
BATCH = 25


def personnummer(n: int) -> str:
    """A valid personnummer (real date, Luhn check digit) per ``n`` below 28 * 12 * 1000."""
    base = f"1980{1 + n // 28 % 12:02d}{1 + n % 28:02d}{n % 1000:03d}"
    return base + str(luhn_check_digit(base[2:]))


def write_targets(path: Path, url: str) -> None:
    path.write_text(
        f"""targets:
  - name: {TARGET}
    kind: storelog
    url: {url}/rivta
    logical_address: SE165565594230-1000
    system_id: SE2321000016-SYS1
    care_provider: SE2321000016-VG01
    care_unit: {UNIT}
    batch_size: {BATCH}
    timeout: 2.0
    retry: {{max_attempts: 1000, max_age: 600, initial_wait: 0.02, longest_wait: 0.5,
            jitter: 0.05}}
""",
        encoding="utf-8",
    )


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[tuple[str, dict[str, str]]]:
    """A PostgreSQL store and the environment that points the processes at it."""
    async with postgres_schema() as url:
        env = {
            **os.environ,
            "REKO_DATABASE_URL": url,
            "REKO_DATA_DIR": str(tmp_path),
            "REKO_TARGETS_FILE": str(tmp_path / "targets.yaml"),
            "REKO_WORKER_LEASE_SECONDS": "3",
        }
        yield url.replace("postgresql://", "postgresql+psycopg://", 1), env


def start_worker(env: dict[str, str], log: Path, *args: str) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:  # the child keeps its own handle
        return subprocess.Popen([str(REKO), "worker", *args], env=env, stdout=out, stderr=out)


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


async def produce(url: str, count: int, patients: int = 40) -> dict[str, str]:
    """``count`` AuditEvents written through the access log's own path (AuditLog, group
    commit), each naming one of ``patients`` Patients; returns log id → personnummer."""
    repo = await SqlRepository.open(url, subscriptions=ACCESS_LOG)
    log = AuditLog(repo.transaction, subscriptions=ACCESS_LOG)
    try:
        async with repo.unit() as unit:
            for n in range(patients):
                resource = {
                    "resourceType": "Patient",
                    "id": f"p{n}",
                    "identifier": [{"system": PNR_SYSTEM, "value": personnummer(n)}],
                }
                await put_in(unit, resource)

        def access(n: int) -> AccessRecord:
            return AccessRecord(
                action="R",
                interaction="read",
                outcome=200,
                agent=STAFF,
                unit=UNIT,
                client_id="journal-app",
                source_address=None,
                patients=(f"Patient/p{n % patients}",),
                entities=(),
                query=None,
                recorded=datetime.now(UTC),
            )

        expected: dict[str, str] = {}
        for start in range(0, count, 250):
            numbers = range(start, min(start + 250, count))
            ids = await asyncio.gather(*(log.record(access(n)) for n in numbers))
            for n, event_id in zip(numbers, ids, strict=True):
                expected[str(uuid.UUID(hex=event_id))] = personnummer(n % patients)
        await log.close()
    finally:
        await repo.close()
    return expected


async def outbox_counts(url: str) -> dict[str, int]:
    repo = await SqlRepository.open(url)
    try:
        async with repo.transaction(writer=False) as conn:
            depth = await outbox_admin.depth(conn)
    finally:
        await repo.close()
    counts = {"pending": 0, "delivered": 0, "dead": 0}
    for (target, status), (count, _) in depth.items():
        assert target == TARGET
        counts[status] += count
    return counts


async def wait_finished(url: str, count: int, seconds: float) -> dict[str, int]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        counts = await outbox_counts(url)
        if counts["delivered"] + counts["dead"] >= count:
            return counts
        await asyncio.sleep(0.3)
    return await outbox_counts(url)


def stats(base: str) -> dict[str, Any]:
    answer: dict[str, Any] = httpx.get(f"{base}/_stats", timeout=10).json()
    return answer


def posts(base: str) -> dict[str, list[list[str]]]:
    answer: dict[str, list[list[str]]] = httpx.get(f"{base}/_posts", timeout=10).json()
    return answer


def assert_no_personnummer(text: str, numbers: set[str]) -> None:
    for number in numbers:
        for form in (number, f"{number[:8]}-{number[8:]}", number[2:]):
            assert form not in text, "a personnummer reached our own log"
    assert not re.search(r"\b(19|20)\d{6}-?\d{4}\b", text)


async def test_two_thousand_audit_events_through_thirty_percent_failures_and_a_kill(
    store: tuple[str, dict[str, str]], tmp_path: Path
) -> None:
    url, env = store
    logs = tmp_path / "worker.log"
    with storelog_service(0.3, seed=7, latency=0.02) as peer:
        write_targets(Path(env["REKO_TARGETS_FILE"]), peer.base_url)
        expected = await produce(url, 2000)
        assert len(expected) == 2000
        assert await outbox_counts(url) == {"pending": 2000, "delivered": 0, "dead": 0}
        first = start_worker(env, logs)
        try:
            deadline = time.monotonic() + 60
            while stats(peer.base_url)["distinct"] < 500:
                assert first.poll() is None, logs.read_text(errors="replace")[-2000:]
                assert time.monotonic() < deadline, "the first worker shipped too little"
                await asyncio.sleep(0.05)
            # The next batch that gets through is stored and its OK held back: the worker is
            # killed between the log service storing it and the worker recording that.
            httpx.post(f"{peer.base_url}/_hold", params={"seconds": "5"}, timeout=5)
            while not any(r["fate"] == "held" for r in stats(peer.base_url)["requests"]):
                assert time.monotonic() < deadline, "no batch got through to be held"
                await asyncio.sleep(0.02)
        finally:
            os.kill(first.pid, signal.SIGKILL)  # mid-run: a batch in flight, its commit lost
            first.wait(10)
        assert (await outbox_counts(url))["pending"] > 0
        second = start_worker(env, logs)
        try:
            counts = await wait_finished(url, 2000, 90)
        finally:
            stop(second)
        shipped = stats(peer.base_url)
        stored = posts(peer.base_url)

    assert counts == {"pending": 0, "delivered": 2000, "dead": 0}
    assert shipped["rejected"] == []  # every request XSD-valid and well-formed
    # Every AuditEvent arrived, under its own id, naming its patient: none lost.
    assert shipped["distinct"] == 2000
    assert set(stored) == set(expected)
    assert all(stored[i] == [[PERSONNUMMER_ROOT, expected[i]]] for i in expected)
    # The failures happened, of every kind.
    fates = shipped["fates"]
    assert all(fates.get(kind, 0) > 0 for kind in ("503", "502", "reset", "lost")), fates
    failed = sum(v for k, v in fates.items() if k in FAILURES)
    assert 0.2 < failed / sum(fates.values()) < 0.4, fates
    # Twice only what had to be sent twice, once more each: the posts of an answer lost after
    # storing (each resent under its id), and the batch in flight when the worker was killed.
    requests = shipped["requests"]
    lost = {i for r in requests if r["fate"] == "lost" for i in r["ids"]}
    held = [r["ids"] for r in requests if r["fate"] == "held"]
    assert len(held) == 1
    assert len(held[0]) == BATCH
    assert set(shipped["duplicates"]) == lost | set(held[0])
    assert all(count == 1 for i, count in shipped["duplicates"].items() if i not in lost)
    # The log posts carry personnummer; our own log does not.
    text = logs.read_text(encoding="utf-8", errors="replace")
    assert "delivery.batch" in text
    assert_no_personnummer(text, set(expected.values()))


async def test_a_final_answer_makes_dead_letters_and_outbox_retry_ships_them(
    tmp_path: Path,
) -> None:
    env = {
        **os.environ,
        "REKO_DATA_DIR": str(tmp_path),
        "REKO_TARGETS_FILE": str(tmp_path / "targets.yaml"),
    }
    env.pop("REKO_DATABASE_URL", None)
    url = f"sqlite+aiosqlite:///{tmp_path / 'reko.sqlite3'}"
    logs = tmp_path / "worker.log"
    with storelog_service() as peer:
        write_targets(Path(env["REKO_TARGETS_FILE"]), peer.base_url)
        expected = await produce(url, 60, patients=3)
        # The first two requests (two batches of 25) are refused: resultCode ERROR.
        httpx.post(f"{peer.base_url}/_fail", params={"count": "2"}, timeout=5)
        once = start_worker(env, logs, "--once")
        assert once.wait(60) == 0, logs.read_text(errors="replace")[-2000:]
        assert await outbox_counts(url) == {"pending": 0, "delivered": 10, "dead": 50}
        assert stats(peer.base_url)["distinct"] == 10
        listed = subprocess.run(
            [str(REKO), "outbox", "list", "--target", TARGET, "--limit", "100"],
            env=env,
            capture_output=True,
            check=True,
        )
        assert listed.stdout.count(b"resultCode ERROR") == 50
        replayed = subprocess.run(
            [str(REKO), "outbox", "retry", "--target", TARGET],
            env=env,
            capture_output=True,
            check=True,
        )
        assert b"50" in replayed.stdout
        again = start_worker(env, logs, "--once")
        assert again.wait(60) == 0, logs.read_text(errors="replace")[-2000:]
        shipped = stats(peer.base_url)
        stored = posts(peer.base_url)
    assert await outbox_counts(url) == {"pending": 0, "delivered": 60, "dead": 0}
    assert shipped["distinct"] == 60
    assert set(stored) == set(expected)
    assert shipped["duplicates"] == {}  # a refused batch stored nothing: no id twice
    assert shipped["rejected"] == []
    assert_no_personnummer(logs.read_text(encoding="utf-8"), set(expected.values()))


async def test_serve_ships_the_access_log_of_its_requests(tmp_path: Path) -> None:
    """Writes (their event in the write's transaction) and reads (the flusher's batches) on a
    real ``reko-fhir serve``, which ships them itself (``REKO_WORKERS`` 1): every AuditEvent
    it stored arrives, naming the patient's personnummer. A refused batch is a dead letter
    that a platform operator sees and replays over HTTP; a unit's operator does not see it."""
    number = personnummer(7)
    with storelog_service() as peer:
        targets = tmp_path / "targets.yaml"
        write_targets(targets, peer.base_url)
        url = f"sqlite+aiosqlite:///{tmp_path / 'data' / 'reko.sqlite3'}"
        service = start_service(tmp_path / "data", {"REKO_TARGETS_FILE": str(targets)})
        unit_admin = service.headers(service.token("user/*.cruds reko/admin"))
        platform = service.headers(
            service.token("system/*.cruds reko/admin", all_units=True, subject=PLATFORM)
        )
        try:
            headers = service.headers()
            with httpx.Client(base_url=service.base, timeout=30) as http:
                httpx.post(f"{peer.base_url}/_fail", params={"count": "1"}, timeout=5)
                created = http.post("/Patient", json=bare_patient(number), headers=headers)
                assert created.status_code == 201, created.text
                assert (await wait_finished(url, 1, 30))["dead"] == 1
                patient_id = created.json()["id"]
                assert http.get(f"/Patient/{patient_id}", headers=headers).status_code == 200
                found = http.get(
                    "/Patient", params={"identifier": f"{PNR_SYSTEM}|{number}"}, headers=headers
                )
                assert found.json()["total"] == 1
                assert await wait_finished(url, 3, 30) == {"pending": 0, "delivered": 2, "dead": 1}
                dead = {"status": "dead", "target": TARGET}
                seen = http.get("/_outbox/messages", params=dead, headers=unit_admin).json()
                assert seen["messages"] == []  # the log's messages are the platform's
                seen = http.get("/_outbox/messages", params=dead, headers=platform).json()
                assert len(seen["messages"]) == 1
                replayed = http.post(
                    "/_outbox/$replay", params={"target": TARGET}, headers=platform
                ).json()
                assert replayed == {"replayed": 1}
            # The three operator requests were logged too, and are shipped with the rest.
            counts = await wait_finished(url, 6, 30)
            repo = await SqlRepository.open(url)
            try:
                async with repo.transaction(writer=False) as conn:
                    rows = (await conn.execute(select(audit_event.c.id))).all()
            finally:
                await repo.close()
            stored = posts(peer.base_url)
        finally:
            service.process.terminate()
            service.process.wait(15)
    logged = {str(uuid.UUID(hex=row.id)) for row in rows}
    assert len(logged) == 6
    assert counts == {"pending": 0, "delivered": 6, "dead": 0}
    assert set(stored) == logged
    requests = [p for p in stored.values() if p]
    assert len(requests) >= 3  # the create, the read, the search (the operator's: the same)
    assert all(patients == [[PERSONNUMMER_ROOT, number]] for patients in requests)
    assert_no_personnummer(service.log.read_text(encoding="utf-8"), {number})
