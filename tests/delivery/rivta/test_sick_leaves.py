"""ListActiveSickLeavesForCareUnit 1.0 against the loopback stub."""

from __future__ import annotations

import dataclasses
import logging
from datetime import date

import httpx
import pytest
import structlog
from lxml import etree

from reko_fhir.delivery.errors import DeliveryError, is_retryable
from reko_fhir.delivery.rivta import (
    ActiveSickLeave,
    ActiveSickLeaves,
    ListActiveSickLeavesForCareUnitClient,
    RivtaSchemas,
)
from reko_fhir.delivery.rivta.sick_leaves import NS, TYPES_NS, build_request, read_response
from reko_fhir.domain import HsaId, PatientId, SickLeavePeriod
from reko_fhir.outcomes import IssueCode, IssueSeverity
from tests.delivery.rivta.conftest import LOGICAL_ADDRESS, assert_follows_contract
from tests.peers.rivta_stub import BAD_PNR, DIAGNOSES, PNR, SNR, RivtaStub

UNIT = HsaId("SE2321000016-E001")
ROOT = "ListActiveSickLeavesForCareUnitResponse.intygsLista"


def client(
    http: httpx.AsyncClient, stub: RivtaStub, schemas: RivtaSchemas | None = None
) -> ListActiveSickLeavesForCareUnitClient:
    return ListActiveSickLeavesForCareUnitClient(http, stub.url, LOGICAL_ADDRESS, schemas=schemas)


async def test_records_carry_patient_unit_issuer_and_periods(
    http: httpx.AsyncClient, stub: RivtaStub, schemas: RivtaSchemas
) -> None:
    answer = await client(http, stub, schemas).fetch(UNIT)
    assert answer.result_code == "OK"
    assert answer.message is None
    assert answer.care_provider == HsaId("SE2321000016-VG01")
    first, second = answer.records
    assert first == ActiveSickLeave(
        certificate_id="c-1",
        patient=PatientId(PNR),
        care_unit=UNIT,
        issuer=HsaId("SE2321000016-D001"),
        periods=(
            SickLeavePeriod(date(2024, 1, 8), date(2024, 1, 21), 100),
            SickLeavePeriod(date(2024, 1, 22), date(2024, 2, 18), 50),
        ),
    )
    assert second.patient == PatientId(SNR)


async def test_a_degree_of_30_is_an_issue_on_that_period_not_rounded(
    http: httpx.AsyncClient, stub: RivtaStub
) -> None:
    answer = await client(http, stub).fetch(UNIT)
    second = answer.records[1]
    # The 30 % period is left out; the 75 % one stays; nothing became 25 %.
    assert second.periods == (SickLeavePeriod(date(2024, 2, 15), date(2024, 3, 10), 75),)
    degree_issues = [i for i in answer.issues if i.code is IssueCode.BUSINESS_RULE]
    assert len(degree_issues) == 1
    issue = degree_issues[0]
    assert issue.severity is IssueSeverity.ERROR
    assert issue.expression == f"{ROOT}.intygsData[1].arbetsformaga.formaga[0].nedsattning"
    assert "30" in issue.diagnostics
    assert "not rounded" in issue.diagnostics


async def test_an_invalid_personnummer_leaves_the_record_out_with_an_issue(
    http: httpx.AsyncClient, stub: RivtaStub
) -> None:
    answer = await client(http, stub).fetch(UNIT)
    assert all(r.certificate_id != "c-3" for r in answer.records)
    issue = next(i for i in answer.issues if i.code is IssueCode.VALUE)
    assert issue.expression == f"{ROOT}.intygsData[2].patient.personId.extension"
    assert "check digit" in issue.diagnostics
    # Neither the invalid number nor a valid one is quoted in any issue.
    for text in (i.diagnostics for i in answer.issues):
        assert BAD_PNR not in text
        assert PNR not in text
        assert BAD_PNR[:8] + "-" + BAD_PNR[8:] not in text
    assert len(answer.issues) == 2


async def test_the_diagnosis_is_dropped_on_import(
    http: httpx.AsyncClient,
    stub: RivtaStub,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    with structlog.testing.capture_logs() as logs:
        answer = await client(http, stub).fetch(UNIT)
    assert any(d in stub.exchanges[-1].answer.decode() for d in DIAGNOSES)  # it was offered
    names = {f.name for f in dataclasses.fields(ActiveSickLeave)}
    names |= {f.name for f in dataclasses.fields(ActiveSickLeaves)}
    assert not any("diagno" in n for n in names)
    printed = capsys.readouterr()
    seen = repr(answer) + repr(logs) + printed.out + printed.err + caplog.text
    seen += " ".join(f"{i.diagnostics} {i.expression}" for i in answer.issues)
    for diagnosis in DIAGNOSES:
        assert diagnosis not in seen
    assert logs, "the import logs its counts"
    assert PNR not in repr(logs)


async def test_info_keeps_the_producers_message(http: httpx.AsyncClient, stub: RivtaStub) -> None:
    stub.mode = "info"
    answer = await client(http, stub).fetch(UNIT)
    assert answer.result_code == "INFO"
    assert answer.message == "Svaret är ofullständigt"
    assert len(answer.records) == 2


async def test_the_request_names_the_unit_and_optional_patient(
    http: httpx.AsyncClient, stub: RivtaStub
) -> None:
    await client(http, stub).fetch(UNIT, patient=PatientId(SNR), max_days_since_end=14)
    sent = stub.exchanges[-1]
    assert sent.action.endswith(":ListActiveSickLeavesForCareUnit")
    assert sent.request is not None
    assert sent.request.findtext(f"{{{NS}}}enhets-id/{{{TYPES_NS}}}extension") == UNIT.value
    person = sent.request.find(f"{{{NS}}}person-id")
    assert person is not None
    assert person.findtext(f"{{{TYPES_NS}}}root") == "1.2.752.129.2.1.3.3"
    assert person.findtext(f"{{{TYPES_NS}}}extension") == SNR
    assert sent.request.findtext(f"{{{NS}}}max-dagar-sedan-avslut") == "14"


def test_built_requests_follow_the_xsd() -> None:
    assert_follows_contract(build_request(UNIT))
    assert_follows_contract(build_request(UNIT, patient=PatientId(PNR), max_days_since_end=0))
    with pytest.raises(ValueError, match="max_days_since_end"):
        build_request(UNIT, max_days_since_end=15)


async def test_result_code_error_is_final(http: httpx.AsyncClient, stub: RivtaStub) -> None:
    stub.mode = "error"
    with pytest.raises(DeliveryError) as caught:
        await client(http, stub).fetch(UNIT)
    assert "ERROR" in caught.value.reason
    assert not is_retryable(caught.value)
    assert PNR not in caught.value.reason  # the producer's comment is masked
    assert "19121212-****" in caught.value.reason


async def test_a_soap_fault_is_final(http: httpx.AsyncClient, stub: RivtaStub) -> None:
    stub.mode = "fault"
    with pytest.raises(DeliveryError) as caught:
        await client(http, stub).fetch(UNIT)
    assert caught.value.status == 500
    assert not is_retryable(caught.value)
    assert caught.value.outcome is not None
    assert caught.value.outcome["faultcode"] == "s:Server"
    assert PNR not in caught.value.reason


async def test_http_503_without_fault_is_retryable(
    http: httpx.AsyncClient, stub: RivtaStub
) -> None:
    stub.mode = "503"
    with pytest.raises(DeliveryError) as caught:
        await client(http, stub).fetch(UNIT)
    assert caught.value.status == 503
    assert is_retryable(caught.value)


async def test_a_connection_reset_propagates_as_a_transport_error(
    http: httpx.AsyncClient, stub: RivtaStub
) -> None:
    stub.mode = "reset"
    with pytest.raises(httpx.TransportError) as caught:
        await client(http, stub).fetch(UNIT)
    assert is_retryable(caught.value)
    assert len(stub.exchanges) == 1  # it did reach the producer


async def test_an_answer_the_xsd_refuses_is_final_when_validating(
    http: httpx.AsyncClient, stub: RivtaStub, schemas: RivtaSchemas
) -> None:
    stub.mode = "invalid-answer"
    with pytest.raises(DeliveryError) as caught:
        await client(http, stub, schemas).fetch(UNIT)
    assert "answer breaks the contract" in caught.value.reason
    assert "vardgivare" in caught.value.reason
    assert not is_retryable(caught.value)
    # Without validation the same answer is read, the missing provider being an issue.
    answer = await client(http, stub).fetch(UNIT)
    assert answer.care_provider is None
    assert any(i.code is IssueCode.REQUIRED for i in answer.issues)


def test_a_body_of_another_contract_is_refused() -> None:
    with pytest.raises(DeliveryError, match="expected ListActiveSickLeavesForCareUnitResponse"):
        read_response(etree.Element("{urn:x}Other"))
