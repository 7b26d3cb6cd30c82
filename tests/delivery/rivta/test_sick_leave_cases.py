"""ListSickLeavesForCare 1.0 against the loopback stub."""

from __future__ import annotations

import dataclasses
from datetime import date

import httpx
import pytest
import structlog

from reko_fhir.delivery.errors import DeliveryError, is_retryable
from reko_fhir.delivery.rivta import (
    ListSickLeavesForCareClient,
    RivtaSchemas,
    SickLeaveCase,
    SickLeaveCases,
)
from reko_fhir.delivery.rivta.sick_leave_cases import NS, TYPES_NS, build_request
from reko_fhir.domain import HsaId, PatientId, SickLeavePeriod
from reko_fhir.outcomes import IssueCode
from tests.delivery.rivta.conftest import LOGICAL_ADDRESS, assert_follows_contract
from tests.peers.rivta_stub import BAD_PNR, DIAGNOSES, PNR, PNR_3, RivtaStub

UNIT = HsaId("SE2321000016-E001")
DOCTOR = HsaId("SE2321000016-D001")
ROOT = "ListSickLeavesForCareResponse.sjukfallLista"


def client(
    http: httpx.AsyncClient, stub: RivtaStub, schemas: RivtaSchemas | None = None
) -> ListSickLeavesForCareClient:
    return ListSickLeavesForCareClient(http, stub.url, LOGICAL_ADDRESS, schemas=schemas)


async def test_cases_carry_dates_degrees_and_no_invented_periods(
    http: httpx.AsyncClient, stub: RivtaStub, schemas: RivtaSchemas
) -> None:
    answer = await client(http, stub, schemas).fetch(UNIT)
    mixed, single, odd = answer.records
    assert mixed == SickLeaveCase(
        patient=PatientId(PNR),
        care_unit=UNIT,
        issuer=DOCTOR,
        start=date(2024, 1, 8),
        end=date(2024, 2, 18),
        active_degree=50,
        degrees=(100, 50),
        certificate_count=2,
        length_days=42,
        periods=(),  # two degrees without their dates: no period is made up
    )
    assert single.patient == PatientId(PNR_3)
    assert single.periods == (SickLeavePeriod(date(2024, 2, 1), date(2024, 3, 10), 75),)
    assert odd.active_degree is None
    assert odd.degrees == ()
    assert odd.periods == ()


async def test_degrees_outside_the_four_are_issues_pointing_at_them(
    http: httpx.AsyncClient, stub: RivtaStub
) -> None:
    answer = await client(http, stub).fetch(UNIT)
    expressions = {i.expression for i in answer.issues if i.code is IssueCode.BUSINESS_RULE}
    assert expressions == {
        f"{ROOT}.sjukfall[2].sjukskrivningsgrad.aktivGrad",
        f"{ROOT}.sjukfall[2].sjukskrivningsgrad.grader.grad[0]",
    }


async def test_an_invalid_personnummer_leaves_the_case_out(
    http: httpx.AsyncClient, stub: RivtaStub
) -> None:
    answer = await client(http, stub).fetch(UNIT)
    assert len(answer.records) == 3
    issue = next(i for i in answer.issues if i.code is IssueCode.VALUE)
    assert issue.expression == f"{ROOT}.sjukfall[3].person-id.extension"
    assert all(BAD_PNR not in i.diagnostics for i in answer.issues)
    assert len(answer.issues) == 3


async def test_the_diagnosis_is_dropped(http: httpx.AsyncClient, stub: RivtaStub) -> None:
    with structlog.testing.capture_logs() as logs:
        answer = await client(http, stub).fetch(UNIT)
    assert "Anpassningsstörning" in stub.exchanges[-1].answer.decode()
    names = {f.name for f in dataclasses.fields(SickLeaveCase)}
    names |= {f.name for f in dataclasses.fields(SickLeaveCases)}
    assert not any("diagno" in n for n in names)
    seen = repr(answer) + repr(logs) + " ".join(i.diagnostics for i in answer.issues)
    for diagnosis in DIAGNOSES:
        assert diagnosis not in seen
    assert "1.2.752.116.1.1.1.1.3" not in seen  # not even the ICD-10-SE code system


async def test_the_request_carries_the_unit_and_its_limits(
    http: httpx.AsyncClient, stub: RivtaStub
) -> None:
    await client(http, stub).fetch(
        UNIT,
        max_days_between_certificates=3,
        min_length_days=1,
        max_length_days=90,
        staff=[DOCTOR],
    )
    sent = stub.exchanges[-1]
    assert sent.action.endswith("ListSickLeavesForCareResponder:1:ListSickLeavesForCare")
    assert sent.request is not None
    assert sent.request.findtext(f"{{{NS}}}enhets-id/{{{TYPES_NS}}}extension") == UNIT.value
    assert sent.request.findtext(f"{{{NS}}}maxDagarMellanIntyg") == "3"
    assert sent.request.findtext(f"{{{NS}}}maxSjukskrivningslangd") == "90"
    assert sent.request.findtext(f"{{{NS}}}personal-id/{{{TYPES_NS}}}extension") == DOCTOR.value


def test_built_requests_follow_the_xsd() -> None:
    assert_follows_contract(build_request(UNIT))
    assert_follows_contract(build_request(UNIT, min_length_days=15, staff=[DOCTOR, UNIT]))


@pytest.mark.parametrize("mode", ["fault", "error", "validation-error"])
async def test_errors_arrive_as_final_faults(
    http: httpx.AsyncClient, stub: RivtaStub, mode: str
) -> None:
    # The contract has no resultCode: its producers say ERROR with a SOAP Fault.
    stub.mode = mode
    with pytest.raises(DeliveryError) as caught:
        await client(http, stub).fetch(UNIT)
    assert "SOAP fault" in caught.value.reason
    assert not is_retryable(caught.value)


async def test_503_is_retryable_and_a_reset_is_a_transport_error(
    http: httpx.AsyncClient, stub: RivtaStub
) -> None:
    stub.mode = "503"
    with pytest.raises(DeliveryError) as caught:
        await client(http, stub).fetch(UNIT)
    assert is_retryable(caught.value)
    stub.mode = "reset"
    with pytest.raises(httpx.TransportError) as reset:
        await client(http, stub).fetch(UNIT)
    assert is_retryable(reset.value)
