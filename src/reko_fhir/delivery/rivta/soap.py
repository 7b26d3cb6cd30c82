"""SOAP 1.1 envelopes as RIVTA BP 2.1 wants them, and the one call that posts them.

RIVTA BP 2.1 (Regelverk för Interoperabilitet inom Vård och Omsorg, basic profile 2.1): SOAP 1.1
over HTTP(S), document/literal, ``Content-Type: text/xml``, the WSDL's ``soapAction`` in the
``SOAPAction`` header, and the receiver in the ``itr:LogicalAddress`` SOAP header
(``urn:riv:itintegration:registry:1``). Errors follow ``delivery/errors.py``: a SOAP Fault is
final whatever its HTTP status; an HTTP 5xx without one is judged by the status rule; transport
failures propagate as httpx raised them (retried by ``is_retryable``).
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx
from lxml import etree

from reko_fhir.delivery.errors import DeliveryError, retry_after_seconds
from reko_fhir.delivery.rivta.schemas import RivtaSchemas
from reko_fhir.domain import HsaId, mask_patient_ids
from reko_fhir.xmlsafe import UnsafeXmlError, parse_xml_safely

SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
REGISTRY_NS = "urn:riv:itintegration:registry:1"
CONTENT_TYPE = "text/xml; charset=UTF-8"
_ENV = f"{{{SOAP_ENV}}}"
_MAX_REASON = 500


class SoapFormatError(ValueError):
    """The bytes are not a SOAP 1.1 envelope with exactly one body element."""


@dataclass(frozen=True, slots=True)
class SoapFault:
    """A SOAP 1.1 Fault (``faultcode``, ``faultstring``), text masked of patient numbers."""

    code: str
    text: str


@dataclass(frozen=True, slots=True)
class SoapMessage:
    """A parsed envelope: the LogicalAddress header (if any) and the body, or its fault."""

    logical_address: str | None
    body: etree._Element | None
    fault: SoapFault | None


def build_envelope(logical_address: str, body: etree._Element) -> bytes:
    """``body`` wrapped in an envelope whose header names the receiver (BP 2.1 §6.3)."""
    if not logical_address.strip():
        raise ValueError("a RIVTA call needs a LogicalAddress (the receiver)")
    envelope = etree.Element(_ENV + "Envelope", nsmap={"soapenv": SOAP_ENV})
    header = etree.SubElement(envelope, _ENV + "Header")
    address = etree.SubElement(
        header, f"{{{REGISTRY_NS}}}LogicalAddress", nsmap={"itr": REGISTRY_NS}
    )
    address.text = logical_address
    etree.SubElement(envelope, _ENV + "Body").append(body)
    return etree.tostring(envelope, xml_declaration=True, encoding="UTF-8")


def _text(element: etree._Element | None) -> str:
    return (element.text or "").strip() if element is not None else ""


def parse_envelope(data: bytes) -> SoapMessage:
    """Parse ``data`` safely (no DTD, no entities) into a :class:`SoapMessage`."""
    try:
        root = parse_xml_safely(data)
    except (etree.XMLSyntaxError, UnsafeXmlError) as exc:
        raise SoapFormatError(f"not well-formed or unsafe XML: {exc}") from None
    if root.tag != _ENV + "Envelope":
        raise SoapFormatError(f"the root is {root.tag}, not a SOAP 1.1 Envelope")
    address = root.find(f"{_ENV}Header/{{{REGISTRY_NS}}}LogicalAddress")
    body = root.find(_ENV + "Body")
    if body is None:
        raise SoapFormatError("the envelope has no Body")
    children = [c for c in body if isinstance(c.tag, str)]
    if len(children) != 1:
        raise SoapFormatError(f"the Body holds {len(children)} elements, not one")
    logical = _text(address) or None
    child = children[0]
    if child.tag == _ENV + "Fault":
        # SOAP 1.1 fault children are unqualified (SOAP 1.1 §4.4).
        fault = SoapFault(
            code=_text(child.find("faultcode")),
            text=mask_patient_ids(_text(child.find("faultstring")))[:_MAX_REASON],
        )
        return SoapMessage(logical, None, fault)
    return SoapMessage(logical, child, None)


def fault_envelope(code: str, text: str) -> bytes:
    """A SOAP 1.1 Fault envelope, as a producer answers one (tests build faults with it)."""
    envelope = etree.Element(_ENV + "Envelope", nsmap={"soapenv": SOAP_ENV})
    fault = etree.SubElement(etree.SubElement(envelope, _ENV + "Body"), _ENV + "Fault")
    etree.SubElement(fault, "faultcode").text = code
    etree.SubElement(fault, "faultstring").text = text
    return etree.tostring(envelope, xml_declaration=True, encoding="UTF-8")


async def call(
    http: httpx.AsyncClient,
    url: str,
    soap_action: str,
    logical_address: str,
    body: etree._Element,
    *,
    what: str,
    schemas: RivtaSchemas | None = None,
) -> etree._Element:
    """POST ``body`` to ``url`` and return the answer's body element.

    With ``schemas`` the request is checked before it leaves and the answer before it is read
    (both final errors: neither side will change its mind on a retry).
    """
    if schemas is not None:
        problems = schemas.errors(body)
        if problems:
            raise DeliveryError(
                f"{what}: the request breaks the contract: {'; '.join(problems)}"[:_MAX_REASON],
                retryable=False,
                kind="config",
            )
    headers = {"Content-Type": CONTENT_TYPE, "SOAPAction": f'"{soap_action}"'}
    # httpx.TransportError (refused, reset, timeout) propagates: is_retryable retries it.
    response = await http.post(url, content=build_envelope(logical_address, body), headers=headers)
    message: SoapMessage | None = None
    try:
        message = parse_envelope(response.content)
    except SoapFormatError as exc:
        if response.is_success:
            raise DeliveryError(
                f"{what}: the answer is no SOAP envelope: {exc}"[:_MAX_REASON],
                status=response.status_code,
                retryable=False,
            ) from None
    if message is not None and message.fault is not None:
        # BP 2.1 sends faults with HTTP 500, but a fault is the producer's final word.
        raise DeliveryError(
            f"{what}: SOAP fault {message.fault.code}: {message.fault.text}",
            status=response.status_code,
            retryable=False,
            outcome={"faultcode": message.fault.code, "faultstring": message.fault.text},
        )
    if not response.is_success or message is None or message.body is None:
        # No fault to go by: 5xx/408/429 retry by the status rule, other refusals are final.
        raise DeliveryError(
            f"{what}: HTTP {response.status_code}",
            status=response.status_code,
            retry_after=retry_after_seconds(response.headers.get("Retry-After")),
        )
    if schemas is not None:
        problems = schemas.errors(message.body)
        if problems:
            raise DeliveryError(
                f"{what}: the answer breaks the contract: {'; '.join(problems)}"[:_MAX_REASON],
                status=response.status_code,
                retryable=False,
            )
    return message.body


class RivtaClient:
    """What every RIVTA client holds: the injected HTTP client (mutual TLS is its business,
    see :func:`~reko_fhir.delivery.auth.client_for`), the service URL, the receiver's
    LogicalAddress, and optionally the schemas to check both directions against."""

    soap_action: str = ""
    what: str = ""

    def __init__(
        self,
        http: httpx.AsyncClient,
        url: str,
        logical_address: str | HsaId,
        *,
        schemas: RivtaSchemas | None = None,
    ) -> None:
        logical_address = str(logical_address)
        if not logical_address.strip():
            raise ValueError("a RIVTA client needs the receiver's LogicalAddress")
        self.http = http
        self.url = url
        self.logical_address = logical_address
        self.schemas = schemas

    async def _call(self, body: etree._Element) -> etree._Element:
        return await call(
            self.http,
            self.url,
            self.soap_action,
            self.logical_address,
            body,
            what=self.what,
            schemas=self.schemas,
        )
