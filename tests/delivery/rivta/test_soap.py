"""SOAP 1.1 envelopes (RIVTA BP 2.1) and the run-time XSD check."""

from __future__ import annotations

import httpx
import pytest
from lxml import etree

from reko_fhir.delivery.errors import DeliveryError
from reko_fhir.delivery.rivta import RivtaSchemas
from reko_fhir.delivery.rivta.sick_leaves import NS, SOAP_ACTION, TYPES_NS, build_request
from reko_fhir.delivery.rivta.soap import (
    REGISTRY_NS,
    SOAP_ENV,
    SoapFormatError,
    build_envelope,
    call,
    fault_envelope,
    parse_envelope,
)
from reko_fhir.domain import HsaId
from tests.delivery.rivta.conftest import LOGICAL_ADDRESS
from tests.peers.rivta_stub import PNR, SCHEMA_ROOT, RivtaStub

UNIT = HsaId("SE2321000016-E001")


def test_the_envelope_carries_the_logical_address_and_one_body() -> None:
    data = build_envelope(LOGICAL_ADDRESS, build_request(UNIT))
    root = etree.fromstring(data)
    assert root.tag == f"{{{SOAP_ENV}}}Envelope"
    assert root.findtext(f"{{{SOAP_ENV}}}Header/{{{REGISTRY_NS}}}LogicalAddress") == LOGICAL_ADDRESS
    message = parse_envelope(data)
    assert message.logical_address == LOGICAL_ADDRESS
    assert message.fault is None
    assert message.body is not None
    assert message.body.tag == f"{{{NS}}}ListActiveSickLeavesForCareUnit"


def test_a_blank_logical_address_is_refused() -> None:
    with pytest.raises(ValueError, match="LogicalAddress"):
        build_envelope(" ", build_request(UNIT))


def test_a_fault_is_read_and_masked() -> None:
    message = parse_envelope(fault_envelope("soapenv:Server", f"no answer for {PNR}"))
    assert message.body is None
    assert message.fault is not None
    assert message.fault.code == "soapenv:Server"
    assert message.fault.text == "no answer for 19121212-****"


@pytest.mark.parametrize(
    "data",
    [
        b"<html>Bad gateway</html>",
        b"not xml",
        f'<s:Envelope xmlns:s="{SOAP_ENV}"><s:Header/></s:Envelope>'.encode(),
        f'<s:Envelope xmlns:s="{SOAP_ENV}"><s:Body><a/><b/></s:Body></s:Envelope>'.encode(),
        # An XXE attempt: refused before anything expands it.
        b'<?xml version="1.0"?><!DOCTYPE e [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        + f'<s:Envelope xmlns:s="{SOAP_ENV}"><s:Body><a>&x;</a></s:Body></s:Envelope>'.encode(),
    ],
)
def test_what_is_no_envelope_is_refused(data: bytes) -> None:
    with pytest.raises(SoapFormatError):
        parse_envelope(data)


def test_schema_messages_mask_patient_numbers(schemas: RivtaSchemas) -> None:
    request = build_request(UNIT)
    request.find(f"{{{NS}}}enhets-id/{{{TYPES_NS}}}root").text = PNR  # type: ignore[union-attr]
    etree.SubElement(request, f"{{{NS}}}max-dagar-sedan-avslut").text = PNR
    problems = schemas.errors(request)
    assert len(problems) == 2
    assert all(PNR not in p for p in problems)
    assert "19121212-****" in " ".join(problems)
    assert schemas.is_valid(build_request(UNIT))


def test_unknown_contracts_and_missing_folders_are_said_plainly(schemas: RivtaSchemas) -> None:
    assert schemas.errors(etree.Element("{urn:x}Other")) == [
        "no RIVTA schema is known for the namespace 'urn:x'"
    ]
    with pytest.raises(FileNotFoundError):
        RivtaSchemas(SCHEMA_ROOT / "missing")


async def test_an_invalid_request_never_leaves(
    http: httpx.AsyncClient, stub: RivtaStub, schemas: RivtaSchemas
) -> None:
    request = build_request(UNIT)
    request.remove(request[0])  # no enhets-id
    with pytest.raises(DeliveryError) as caught:
        await call(http, stub.url, SOAP_ACTION, LOGICAL_ADDRESS, request, what="t", schemas=schemas)
    assert caught.value.kind == "config"
    assert not caught.value.retryable
    assert "enhets-id" in caught.value.reason
    assert stub.exchanges == []


async def test_the_stub_refuses_what_breaks_the_contract(
    http: httpx.AsyncClient, stub: RivtaStub
) -> None:
    # Without client-side validation the producer is the one to say no: a final fault.
    request = build_request(UNIT)
    request.remove(request[0])
    with pytest.raises(DeliveryError) as caught:
        await call(http, stub.url, SOAP_ACTION, LOGICAL_ADDRESS, request, what="t")
    assert "SOAP fault" in caught.value.reason
    assert not caught.value.retryable
    assert len(stub.rejected) == 1
    stub.exchanges.clear()  # the fixture checks that the clients' own requests are valid


async def test_the_stub_checks_the_soap_action_and_content_type(
    http: httpx.AsyncClient, stub: RivtaStub
) -> None:
    data = build_envelope(LOGICAL_ADDRESS, build_request(UNIT))
    answer = await http.post(stub.url, content=data, headers={"Content-Type": "application/xml"})
    assert answer.status_code == 500
    problems = stub.rejected[0].problems
    assert any("Content-Type" in p for p in problems)
    assert any("SOAPAction" in p for p in problems)
    stub.exchanges.clear()
