"""The RIVTA stub on loopback, and a check after every test that each request the clients
built and each answer they parsed follows its contract's XSD (lxml.etree.XMLSchema)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from lxml import etree

from reko_fhir.delivery.rivta import RivtaSchemas
from reko_fhir.xmlsafe import parse_xml_safely
from tests.peers.rivta_stub import (
    SOAP_ENV,
    RivtaStub,
    errors_of,
    load_schema,
    rivta_stub,
)

LOGICAL_ADDRESS = "SE2321000016-INTYG"


def assert_follows_contract(element: etree._Element) -> None:
    """``element`` (a request or answer body) is valid against its responder XSD."""
    schema = load_schema(etree.QName(element).namespace or "")
    document = etree.ElementTree(etree.fromstring(etree.tostring(element)))
    assert schema.validate(document), errors_of(schema)


@pytest.fixture
def stub() -> Iterator[RivtaStub]:
    with rivta_stub() as running:
        yield running
    assert running.rejected == [], [e.problems for e in running.rejected]
    for exchange in running.exchanges:
        assert exchange.request is not None
        assert exchange.logical_address == LOGICAL_ADDRESS
        assert_follows_contract(exchange.request)
        if exchange.status == 200 and exchange.mode != "invalid-answer":
            body = parse_xml_safely(exchange.answer).find(f"{{{SOAP_ENV}}}Body")
            assert body is not None
            assert_follows_contract(body[0])


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=httpx.Timeout(5.0)) as client:
        yield client


@pytest.fixture(scope="session")
def schemas() -> RivtaSchemas:
    return RivtaSchemas()  # the schemas the package ships
