"""The access log as an outbox target, in process, on SQLite and PostgreSQL: AuditEvents queued
in their own transaction, mapped to StoreLog posts, shipped in batches to the XSD-checking
RIVTA stub (``tests/peers/rivta_stub.py``). The real processes are in test_storelog_shipping.py.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from reko_fhir.delivery import metrics
from reko_fhir.delivery.access_log import StoreLogDelivery, build_storelog, log_id, log_posts
from reko_fhir.delivery.config import StoreLogTargetConfig, TargetConfigError, load_targets
from reko_fhir.delivery.rivta.storelog import LOG_NS, NS, build_request
from reko_fhir.delivery.worker import Worker
from reko_fhir.domain import HsaId
from reko_fhir.security.audit import DELIVERY, AccessRecord, AuditLog, audit_entry, audit_event
from reko_fhir.store import SqlRepository, audit, outbox, outbox_admin
from reko_fhir.store.audit_outbox import with_patient_identifiers
from reko_fhir.store.outbox import Subscription
from tests.delivery.rivta.conftest import assert_follows_contract
from tests.delivery.test_outbox import FAST, Recorder, store_url  # noqa: F401 - a fixture
from tests.peers.rivta_stub import RivtaStub, rivta_stub
from tests.writes import put, put_in

PNR = "191212121212"
SNR = "198503722384"
PNR_SYSTEM = "http://electronichealth.se/identifier/personnummer"
SNR_SYSTEM = "http://electronichealth.se/identifier/samordningsnummer"
STAFF, UNIT, OTHER_UNIT = "SE2321000016-R3K7", "SE2321000016-VC01", "SE2321000016-VC02"
LOG = Subscription("national-log", frozenset(), access_log=True)


def config(url: str = "http://127.0.0.1:1/rivta", **changes: object) -> StoreLogTargetConfig:
    values: dict[str, object] = {
        "name": "national-log",
        "kind": "storelog",
        "url": url,
        "logical_address": "SE165565594230-1000",
        "system_id": "SE2321000016-SYS1",
        "care_provider": "SE2321000016-VG01",
        "care_providers": {OTHER_UNIT: "SE2321000016-VG02"},
        "care_unit": "SE2321000016-E001",
        "batch_size": 25,
        "retry": {"max_attempts": 4, "initial_wait": 0, "longest_wait": 0, "jitter": 0},
    }
    return StoreLogTargetConfig.model_validate(values | changes)


def access(**changes: object) -> AccessRecord:
    values: dict[str, object] = {
        "action": "R",
        "interaction": "search-type",
        "outcome": 200,
        "agent": STAFF,
        "unit": UNIT,
        "client_id": "journal-app",
        "source_address": "10.0.0.7",
        "patients": ("Patient/a", "Patient/b"),
        "entities": ("CarePlan/9",),
        "query": "identifier=x",
        "recorded": datetime(2026, 3, 2, 8, 15, tzinfo=UTC),
    }
    return AccessRecord(**(values | changes))  # type: ignore[arg-type]


@pytest.fixture
def stub() -> Iterator[RivtaStub]:
    with rivta_stub() as running:
        yield running
    assert running.rejected == [], [e.problems for e in running.rejected]
    for exchange in running.exchanges:
        assert exchange.request is not None
        assert_follows_contract(exchange.request)


@pytest.fixture
async def repo(store_url: str) -> AsyncIterator[SqlRepository]:  # noqa: F811
    opened = await SqlRepository.open(store_url, subscriptions=[LOG])
    async with opened.unit() as unit:
        await put_in(unit, patient("a", PNR_SYSTEM, PNR))
        await put_in(unit, patient("b", SNR_SYSTEM, SNR))
    try:
        yield opened
    finally:
        await opened.close()


def patient(pid: str, system: str, value: str) -> dict[str, object]:
    return {
        "resourceType": "Patient",
        "id": pid,
        "identifier": [{"system": system, "value": value}],
    }


async def queued(repo: SqlRepository) -> list[outbox.Message]:
    async with repo.transaction(writer=False) as conn:
        return await outbox_admin.messages(conn, status=None, limit=1000)


# -- the mapping --------------------------------------------------------------------------


def test_an_audit_event_becomes_one_xsd_valid_post_naming_who_where_whom_and_what() -> None:
    posts = log_posts(config())
    numbers = {"a": {"system": PNR_SYSTEM, "value": PNR}, "b": {"system": SNR_SYSTEM, "value": SNR}}
    event = with_patient_identifiers(audit_event(access(), event_id=uuid.uuid4().hex), numbers)
    record = posts.record(event)
    assert record.log_id == str(uuid.UUID(hex=event["id"]))
    assert record.log_id == posts.record(event).log_id  # a resend carries the same id
    assert (record.user, record.care_unit) == (HsaId(STAFF), HsaId(UNIT))
    assert record.care_provider == HsaId("SE2321000016-VG01")
    assert [p.value for p in record.patients] == [PNR, SNR]
    assert (record.activity_type, record.activity_level) == ("Läsa", "search-type")
    assert record.activity_args == "outcome 0; Patient/a Patient/b CarePlan/9"
    assert record.resource_type == "CarePlan"
    assert record.time == datetime(2026, 3, 2, 8, 15, tzinfo=UTC)
    request = build_request([record])
    assert_follows_contract(request)
    extensions = request.findall(f".//{{{LOG_NS}}}patientId/{{{LOG_NS}}}extension")
    assert [e.text for e in extensions] == [PNR, SNR]


def test_machine_agents_units_elsewhere_and_exports_fall_back_to_the_configured_ones() -> None:
    posts = log_posts(config())
    worker = audit_event(
        access(action="R", interaction=DELIVERY, agent="reko-fhir-worker", unit=None, outcome=503),
        event_id="not-a-uuid",
    )
    record = posts.record(worker)
    assert record.log_id == "not-a-uuid"
    assert record.user == HsaId("SE2321000016-SYS1")  # no person: the system itself
    assert record.user_name == "reko-fhir-worker"
    assert record.care_unit == HsaId("SE2321000016-E001")
    assert record.activity_type == "Utlämna"
    assert "outcome 8 (HTTP 503)" in (record.activity_args or "")
    assert record.patients == ()  # no identifier filled in: the post names no patient
    other = posts.record(audit_event(access(unit=OTHER_UNIT), event_id=uuid.uuid4().hex))
    assert other.care_provider == HsaId("SE2321000016-VG02")
    outside = posts.record(
        audit_event(access(unit="urn:oid:2.5.4.97|2021005521"), event_id=uuid.uuid4().hex)
    )
    assert outside.care_unit == HsaId("SE2321000016-E001")
    assert len(log_id("x" * 40)) == 36


def test_a_storelog_target_is_checked_where_it_is_written(tmp_path: Path) -> None:
    path = tmp_path / "targets.yaml"
    path.write_text(
        "targets: [{name: log, kind: storelog, url: 'http://a', logical_address: L,"
        " system_id: SE2321000016-SYS1, care_provider: nope, care_unit: SE2321000016-E001}]",
        encoding="utf-8",
    )
    with pytest.raises(TargetConfigError, match=r"targets\.0\.care_provider: .*HSA-id"):
        load_targets(path)
    path.write_text("targets: [{name: log, kind: storelog, url: 'http://a'}]", encoding="utf-8")
    with pytest.raises(TargetConfigError, match=r"targets\.0\.logical_address"):
        load_targets(path)
    assert config().subscription() == LOG


# -- queued with the event, in its transaction --------------------------------------------


async def test_each_audit_event_is_queued_once_in_its_own_transaction(repo: SqlRepository) -> None:
    assert await queued(repo) == []  # resources are never sent to the access log's target
    entry = audit_entry(access())

    async def append_then_fail() -> None:
        async with repo.transaction() as conn:
            await audit.append(conn, [entry], subscriptions=repo.subscriptions)
            raise RuntimeError("the request failed after logging")

    with pytest.raises(RuntimeError):
        await append_then_fail()
    counts = await repo.row_counts()
    assert (counts["audit_event"], counts["outbox_message"]) == (0, 0)
    log = AuditLog(repo.transaction, subscriptions=repo.subscriptions)
    ids = [await log.record(access()) for _ in range(3)]
    await log.close()
    messages = await queued(repo)
    assert sorted(m.resource_id for m in messages) == sorted(ids)
    assert all(
        (m.target, m.resource_type, m.ordering_key)
        == ("national-log", "AuditEvent", f"AuditEvent/{m.resource_id}")
        for m in messages
    )
    # The patients' national numbers as they stood when the access was logged.
    payload = messages[0].payload or {}
    named = [e["what"].get("identifier") for e in payload["entity"] if "what" in e]
    assert named[:2] == [
        {"system": PNR_SYSTEM, "value": PNR},
        {"system": SNR_SYSTEM, "value": SNR},
    ]
    await repo.delete("Patient", "a")  # a deleted patient is still named, from its history
    async with repo.transaction() as conn:
        await audit.append(conn, [audit_entry(access())], subscriptions=repo.subscriptions)
    newest = (await queued(repo))[-1].payload or {}
    assert newest["entity"][0]["what"]["identifier"]["value"] == PNR


# -- shipped in batches -------------------------------------------------------------------


async def test_the_worker_ships_batches_and_records_each_once(
    repo: SqlRepository, stub: RivtaStub
) -> None:
    target = build_storelog(config(stub.url))
    log = AuditLog(repo.transaction, subscriptions=repo.subscriptions)
    ids = [await log.record(access(patients=("Patient/a",))) for _ in range(60)]
    await log.close()
    before = (await repo.row_counts())["audit_event"]
    worker = Worker(repo, {target.name: target})
    try:
        await worker.drain(timeout=30)
    finally:
        await target.aclose()
    sizes = [
        len(e.request.findall(f"{{{NS}}}log")) for e in stub.exchanges if e.request is not None
    ]
    assert sizes == [25, 25, 10]
    sent = [
        post.findtext(f"{{{LOG_NS}}}logId")
        for e in stub.exchanges
        if e.request is not None
        for post in e.request.findall(f"{{{NS}}}log")
    ]
    assert sorted(sent) == sorted(str(uuid.UUID(hex=i)) for i in ids)
    assert {m.status for m in await queued(repo)} == {"delivered"}
    # Shipping the log is not itself logged: it would log itself for ever.
    assert (await repo.row_counts())["audit_event"] == before
    shipped = metrics.REGISTRY.get_sample_value(
        "reko_deliveries_total", {"target": "national-log", "result": "delivered"}
    )
    assert (shipped or 0) >= 60


async def test_a_refused_batch_is_dead_and_a_broken_post_fails_alone(
    repo: SqlRepository, stub: RivtaStub
) -> None:
    target: StoreLogDelivery = build_storelog(config(stub.url))
    log = AuditLog(repo.transaction, subscriptions=repo.subscriptions)
    for _ in range(3):
        await log.record(access())
    await log.close()
    stub.mode = "validation-error"
    worker = Worker(repo, {target.name: target})
    await worker.drain(timeout=30)
    dead = await queued(repo)
    assert {(m.status, m.dead_reason) for m in dead} == {("dead", "rejected")}
    assert all("resultCode VALIDATION_ERROR" in (m.last_error or "") for m in dead)
    assert all(PNR not in (m.last_error or "") for m in dead)
    async with repo.transaction() as conn:
        assert await outbox_admin.replay(conn, target="national-log") == 3
        broken = dead[0].id
    async with repo.transaction() as conn:
        await conn.execute(
            outbox.outbox_message.update()
            .where(outbox.outbox_message.c.id == broken)
            .values(payload='{"resourceType": "AuditEvent"}')
        )
    stub.mode = "ok"
    try:
        await worker.drain(timeout=30)
    finally:
        await target.aclose()
    outcome = {m.id: (m.status, m.last_error) for m in await queued(repo)}
    assert outcome.pop(broken)[0] == "dead"
    assert {status for status, _ in outcome.values()} == {"delivered"}
    assert len(stub.exchanges[-1].request.findall(f"{{{NS}}}log")) == 2  # type: ignore[union-attr]


async def test_the_delivery_of_a_resource_is_logged_and_that_log_shipped(
    repo: SqlRepository, stub: RivtaStub
) -> None:
    """The worker's own AuditEvent of a disclosure is an AuditEvent like any other."""
    ehr = Recorder("ehr")
    both = await SqlRepository.open(
        repo.engine.url.render_as_string(hide_password=False),
        subscriptions=[LOG, Subscription("ehr", frozenset({"Patient"}))],
    )
    target = build_storelog(config(stub.url))
    try:
        await put(both, patient("c", PNR_SYSTEM, PNR))
        worker = Worker(both, {"ehr": ehr, target.name: target})
        await worker.drain(timeout=30)
        await worker.drain(timeout=30)  # the delivery's AuditEvent, queued by the first pass
    finally:
        await target.aclose()
        await both.close()
    assert [m.resource_id for m in ehr.delivered] == ["c"]
    shipped = [e.request for e in stub.exchanges if e.request is not None]
    assert len(shipped) == 1
    assert shipped[0].findtext(f".//{{{LOG_NS}}}activityType") == "Utlämna"
