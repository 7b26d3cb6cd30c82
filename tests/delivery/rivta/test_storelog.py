"""StoreLog 2.0 against the loopback stub."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import httpx
import pytest

from reko_fhir.delivery.errors import DeliveryError, is_retryable
from reko_fhir.delivery.rivta import AccessLogRecord, RivtaSchemas, StoreLogClient
from reko_fhir.delivery.rivta.storelog import LOG_NS, NS, build_request
from reko_fhir.domain import DomainError, HsaId, PatientId
from tests.delivery.rivta.conftest import LOGICAL_ADDRESS, assert_follows_contract
from tests.peers.rivta_stub import PNR, SNR, RivtaStub

STOCKHOLM_WINTER = timezone(timedelta(hours=1))


def record(**changes: object) -> AccessLogRecord:
    values: dict[str, object] = {
        "log_id": "6f1c8a4e-0d3b-4b8e-9a77-2d1b3c4d5e6f",
        "activity_type": "Läsa",
        "time": datetime(2024, 2, 1, 9, 30, tzinfo=STOCKHOLM_WINTER),
        "purpose": "Vård och behandling",
        "user": HsaId("SE2321000016-R001"),
        "care_unit": HsaId("SE2321000016-E001"),
        "care_provider": HsaId("SE2321000016-VG01"),
        "patients": (PatientId(PNR),),
        "system_id": HsaId("SE2321000016-SYS1"),
        "system_name": "reko-fhir",
    }
    values.update(changes)
    return AccessLogRecord(**values)  # type: ignore[arg-type]


def client(
    http: httpx.AsyncClient, stub: RivtaStub, schemas: RivtaSchemas | None = None
) -> StoreLogClient:
    return StoreLogClient(http, stub.url, LOGICAL_ADDRESS, schemas=schemas)


async def test_ok_stores_every_post(
    http: httpx.AsyncClient, stub: RivtaStub, schemas: RivtaSchemas
) -> None:
    second = record(
        log_id="b2",
        patients=(PatientId(SNR),),
        user_name="Rita Reko",
        care_unit_name="VC Tolvberga",
        care_provider_name="Region Tolv",
    )
    result = await client(http, stub, schemas).store([record(), second])
    assert result.result_code == "OK"
    assert result.message is None
    sent = stub.exchanges[-1].request
    assert sent is not None
    posts = sent.findall(f"{{{NS}}}log")
    assert [p.findtext(f"{{{LOG_NS}}}logId") for p in posts] == [record().log_id, "b2"]
    roots = sent.findall(f".//{{{LOG_NS}}}patientId/{{{LOG_NS}}}root")
    assert [r.text for r in roots] == ["1.2.752.129.2.1.3.1", "1.2.752.129.2.1.3.3"]
    assert posts[0].findtext(f"{{{LOG_NS}}}activity/{{{LOG_NS}}}startDate") == (
        "2024-02-01T09:30:00+01:00"
    )


def test_built_requests_follow_the_xsd() -> None:
    assert_follows_contract(build_request([record()]))
    assert_follows_contract(
        build_request([record(system_name=None, time=datetime(2024, 1, 1, tzinfo=UTC))])
    )
    with pytest.raises(ValueError, match="at least one"):
        build_request([])


async def test_info_keeps_its_text(http: httpx.AsyncClient, stub: RivtaStub) -> None:
    stub.mode = "info"
    result = await client(http, stub).store([record()])
    assert result.result_code == "INFO"
    assert result.message is not None
    assert result.message.startswith("Loggtjänsten: INFO")


@pytest.mark.parametrize(
    ("mode", "code"), [("error", "ERROR"), ("validation-error", "VALIDATION_ERROR")]
)
async def test_error_result_codes_are_final(
    http: httpx.AsyncClient, stub: RivtaStub, mode: str, code: str
) -> None:
    stub.mode = mode
    with pytest.raises(DeliveryError) as caught:
        await client(http, stub).store([record()])
    assert f"resultCode {code}:" in caught.value.reason
    assert not is_retryable(caught.value)
    assert PNR not in caught.value.reason


async def test_fault_503_and_reset(http: httpx.AsyncClient, stub: RivtaStub) -> None:
    stub.mode = "fault"
    with pytest.raises(DeliveryError) as fault:
        await client(http, stub).store([record()])
    assert not is_retryable(fault.value)
    stub.mode = "503"
    with pytest.raises(DeliveryError) as busy:
        await client(http, stub).store([record()])
    assert busy.value.status == 503
    assert is_retryable(busy.value)
    stub.mode = "reset"
    with pytest.raises(httpx.TransportError):
        await client(http, stub).store([record()])


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"time": datetime(2024, 2, 1, 9, 30)}, "time"),
        ({"log_id": "x" * 37}, "log_id"),
        ({"log_id": " "}, "log_id"),
        ({"purpose": ""}, "purpose"),
        ({"activity_type": "a" * 257}, "activity_type"),
        ({"system_name": " "}, "system_name"),
    ],
)
def test_a_record_the_contract_would_refuse_is_refused_early(
    changes: dict[str, object], field: str
) -> None:
    with pytest.raises(DomainError) as caught:
        record(**changes)
    assert caught.value.field == field


def test_a_post_names_each_patient_in_a_resource_of_its_own_or_none() -> None:
    two = build_request(
        [record(patients=(PatientId(PNR), PatientId(SNR)), activity_level="search-type")]
    )
    assert_follows_contract(two)
    resources = two.findall(f".//{{{LOG_NS}}}resource")
    assert [r.findtext(f"{{{LOG_NS}}}patient/{{{LOG_NS}}}patientId/{{{LOG_NS}}}extension")
            for r in resources] == [PNR, SNR]  # fmt: skip
    assert two.findtext(f".//{{{LOG_NS}}}activityLevel") == "search-type"
    nobody = build_request([record(patients=(), activity_args="outcome 4")])
    assert_follows_contract(nobody)
    assert len(nobody.findall(f".//{{{LOG_NS}}}resource")) == 1
    assert nobody.find(f".//{{{LOG_NS}}}patient") is None
    with pytest.raises(DomainError) as caught:
        record(activity_args="x" * 8193)
    assert caught.value.field == "activity_args"
