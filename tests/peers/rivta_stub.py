"""A RIVTA BP 2.1 producer stub on loopback: SOAP 1.1 over a real socket, in a thread.

It plays Intygstjänsten (ListActiveSickLeavesForCareUnit 1.0, ListSickLeavesForCare 1.0) and
the national log service (StoreLog 2.0). EVERY request is checked the way a strict producer
would: ``Content-Type: text/xml``, the WSDL's ``SOAPAction``, a SOAP 1.1 envelope with a
``LogicalAddress`` header and one body element that the contract's XSD accepts; a request that
fails answers a SOAP Fault and is kept in ``rejected``. Answers are hand-written, XSD-valid,
carry diagnoses (so dropping them is tested) and a degree of 30 % (so the issue is tested).

``mode`` picks the answer: ok, info, fault, error (resultCode ERROR), validation-error
(VALIDATION_ERROR), 503, reset (TCP RST), invalid-answer (an answer the XSD refuses). A contract
without the asked result code answers a SOAP Fault, as real producers of it do.

    with rivta_stub() as stub:        # or stub = RivtaStub().start(); ...; stub.stop()
        stub.mode = "fault"
        ... stub.url, stub.exchanges, stub.rejected
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import struct
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import cast

from lxml import etree

from reko_fhir.delivery.rivta.schemas import SCHEMA_ROOT
from reko_fhir.xmlsafe import parse_xml_safely, safe_parser

SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
REGISTRY = "urn:riv:itintegration:registry:1"
ACTIVE = (
    "urn:riv:clinicalprocess:healthcond:rehabilitation:ListActiveSickLeavesForCareUnitResponder:1"
)
CARE = "urn:riv:clinicalprocess:healthcond:certificate:ListSickLeavesForCareResponder:1"
STORE = "urn:riv:informationsecurity:auditing:log:StoreLogResponder:2"
TYPES2 = "urn:riv:clinicalprocess:healthcond:certificate:types:2"
XSDS = {
    ACTIVE: "intyg/clinicalprocess-healthcond-rehabilitation/schemas/interactions/"
    "ListActiveSickLeavesForCareUnitInteraction/ListActiveSickLeavesForCareUnitResponder_1.0.xsd",
    CARE: "rivta/clinicalprocess-healthcond-certificate/schemas/interactions/"
    "ListSickLeavesForCareInteraction/ListSickLeavesForCareResponder_1.0.xsd",
    STORE: "rivta/informationsecurity-auditing-log/schemas/interactions/"
    "StoreLogInteraction/StoreLogResponder_2.0.xsd",
}
# The soapAction of each request element, copied from the WSDLs.
ACTIONS = {
    f"{{{ACTIVE}}}ListActiveSickLeavesForCareUnit": f"{ACTIVE}:ListActiveSickLeavesForCareUnit",
    f"{{{CARE}}}ListSickLeavesForCare": f"{CARE}:ListSickLeavesForCare",
    f"{{{STORE}}}StoreLog": f"{STORE}:StoreLog",
}
MODES = ("ok", "info", "fault", "error", "validation-error", "503", "reset", "invalid-answer")
DIAGNOSES = ("F432", "M545", "Z733", "Anpassningsstörning")  # must never leave the client

PNR = "191212121212"  # personnummer (Skatteverket's test number)
SNR = "198503722384"  # samordningsnummer (day 12 + 60)
PNR_3 = "197905123456"
BAD_PNR = "191212121213"  # wrong check digit, yet \d{12} as the XSD asks
HSA = "1.2.752.129.2.1.4.1"
UNIT = "SE2321000016-E001"
DOCTOR = "SE2321000016-D001"
PROVIDER = "SE2321000016-VG01"


def errors_of(schema: etree.XMLSchema) -> list[str]:
    # lxml-stubs do not know that an error log is iterable.
    return [e.message for e in cast("Iterable[etree._LogEntry]", schema.error_log)]


def load_schema(namespace: str) -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(SCHEMA_ROOT / XSDS[namespace]), parser=safe_parser()))


def _ii(tag: str, prefix: str, root: str, ext: str) -> str:
    return f"<{tag}><{prefix}:root>{root}</{prefix}:root><{prefix}:extension>{ext}</{prefix}:extension></{tag}>"


def _certificate(cid: str, pnr: str, periods: list[tuple[str, str, int]], unit: str = UNIT) -> str:
    pid_root = "1.2.752.129.2.1.3.3" if int(pnr[6:8]) > 60 else "1.2.752.129.2.1.3.1"
    formagor = "".join(
        f"<c:formaga><c:startdatum>{s}</c:startdatum><c:slutdatum>{e}</c:slutdatum>"
        f"<c:nedsattning>{n}</c:nedsattning></c:formaga>"
        for s, e, n in periods
    )
    return (
        f"<c:intygsData><c:intygsId>{cid}</c:intygsId>"
        f"<c:patient>{_ii('c:personId', 't', pid_root, pnr)}"
        "<c:fullstandigtNamn>Tolvan Tolvansson</c:fullstandigtNamn></c:patient>"
        f"<c:skapadAv>{_ii('c:personalId', 't', HSA, DOCTOR)}"
        "<c:fullstandigtNamn>Ajla Doktor</c:fullstandigtNamn><c:befattningar/>"
        f"<c:enhet>{_ii('c:enhetsId', 't', HSA, unit)}<c:enhetsnamn>VC Tolvberga</c:enhetsnamn>"
        "</c:enhet></c:skapadAv>"
        "<c:diagnoskod>F432</c:diagnoskod><c:bidiagnoser>M545</c:bidiagnoser>"
        "<c:bidiagnoser>Z733</c:bidiagnoser>"
        f"<c:arbetsformaga>{formagor}</c:arbetsformaga>"
        "<c:enkeltIntyg>false</c:enkeltIntyg>"
        "<c:signeringsTidpunkt>2024-01-08T10:15:00</c:signeringsTidpunkt>"
        "<c:sysselsattning>NUVARANDE_ARBETE</c:sysselsattning></c:intygsData>"
    )


def active_answer(
    code: str,
    comment: str | None,
    *,
    certificates: bool,
    valid: bool = True,
    listing: str | None = None,
) -> str:
    """The answer; ``listing`` (intygsData elements) replaces the three fixed certificates."""
    if listing is None:
        listing = ""
    if certificates:
        listing = (
            _certificate(
                "c-1", PNR, [("2024-01-08", "2024-01-21", 100), ("2024-01-22", "2024-02-18", 50)]
            )
            + _certificate(
                "c-2", SNR, [("2024-02-01", "2024-02-14", 30), ("2024-02-15", "2024-03-10", 75)]
            )
            + _certificate("c-3", BAD_PNR, [("2024-02-01", "2024-02-29", 100)])
        )
    provider = (
        f"<r:vardgivare>{_ii('c:vardgivarId', 't', HSA, PROVIDER)}"
        "<c:vardgivarnamn>Region Tolv</c:vardgivarnamn></r:vardgivare>"
    )
    return (
        f'<r:ListActiveSickLeavesForCareUnitResponse xmlns:r="{ACTIVE}" '
        'xmlns:c="urn:riv:clinicalprocess:healthcond:rehabilitation:1" '
        'xmlns:t="urn:riv:clinicalprocess:healthcond:certificate:types:2">'
        f"{provider if valid else ''}<r:intygsLista>{listing}</r:intygsLista>"
        f"<r:resultCode>{code}</r:resultCode>"
        + (f"<r:comment>{comment}</r:comment>" if comment else "")
        + "</r:ListActiveSickLeavesForCareUnitResponse>"
    )


def _case(pnr: str, start: str, end: str, active: int, grades: list[int]) -> str:
    return (
        f"<r:sjukfall>{_ii('r:person-id', 't', '1.2.752.129.2.1.3.1', pnr)}"
        "<r:patientFullstandigtNamn>Tolvan Tolvansson</r:patientFullstandigtNamn>"
        f"{_ii('r:enhets-id', 't', HSA, UNIT)}{_ii('r:personal-id', 't', HSA, DOCTOR)}"
        f"<r:startdatum>{start}</r:startdatum><r:slutdatum>{end}</r:slutdatum>"
        "<r:diagnoskod><r:code>F432</r:code><r:codeSystem>1.2.752.116.1.1.1.1.3</r:codeSystem>"
        "<r:displayName>Anpassningsstörning</r:displayName></r:diagnoskod>"
        "<r:antalIntyg>2</r:antalIntyg><r:sjukskrivningslangd>42</r:sjukskrivningslangd>"
        f"<r:sjukskrivningsgrad><r:aktivGrad>{active}</r:aktivGrad><r:grader>"
        + "".join(f"<r:grad>{g}</r:grad>" for g in grades)
        + "</r:grader></r:sjukskrivningsgrad></r:sjukfall>"
    )


def care_answer() -> str:
    return (
        f'<r:ListSickLeavesForCareResponse xmlns:r="{CARE}" '
        'xmlns:t="urn:riv:clinicalprocess:healthcond:certificate:types:3"><r:sjukfallLista>'
        + _case(PNR, "2024-01-08", "2024-02-18", 50, [100, 50])
        + _case(PNR_3, "2024-02-01", "2024-03-10", 75, [75])
        + _case(PNR_3, "2024-04-01", "2024-04-30", 30, [30])
        + _case(BAD_PNR, "2024-02-01", "2024-03-10", 100, [100])
        + "</r:sjukfallLista></r:ListSickLeavesForCareResponse>"
    )


def store_answer(code: str, text: str | None) -> str:
    return (
        f'<r:StoreLogResponse xmlns:r="{STORE}" xmlns:l="urn:riv:informationsecurity:auditing:log:2">'
        f"<r:result><l:resultCode>{code}</l:resultCode>"
        + (f"<l:resultText>{text}</l:resultText>" if text else "")
        + "</r:result></r:StoreLogResponse>"
    )


def envelope(body: str) -> bytes:
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><s:Envelope xmlns:s="{SOAP_ENV}">'
        f"<s:Header/><s:Body>{body}</s:Body></s:Envelope>"
    ).encode()


def fault(code: str, text: str) -> bytes:
    return envelope(
        f"<s:Fault><faultcode>s:{code}</faultcode><faultstring>{text}</faultstring></s:Fault>"
    )


@dataclass
class Exchange:
    """One request the stub took and what it answered (``body`` is the answered body element)."""

    action: str
    logical_address: str | None
    request: etree._Element | None
    status: int
    answer: bytes
    mode: str
    problems: list[str] = field(default_factory=list)


class RivtaStub:
    """The producer; ``mode`` may be changed between calls from the test thread."""

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.mode = "ok"
        self.tls = tls
        # A generated feed: care unit HSA-id -> its intygsData (tests/peers/sick_leave_feed.py).
        self.feed: dict[str, str] | None = None
        self.exchanges: list[Exchange] = []
        self.schemas = {ns: load_schema(ns) for ns in XSDS}
        self._lock = threading.Lock()  # libxml2 schemas are not shared across threads safely
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def rejected(self) -> list[Exchange]:
        return [e for e in self.exchanges if e.problems]

    @property
    def url(self) -> str:
        assert self._server is not None, "the stub is not running"
        scheme = "https" if self.tls else "http"
        return f"{scheme}://127.0.0.1:{self._server.server_address[1]}/rivta"

    def check(
        self, headers: dict[str, str], data: bytes
    ) -> tuple[str, str | None, etree._Element | None, list[str]]:
        """Why this request breaks RIVTA BP 2.1 or its contract (empty when it does not)."""
        problems: list[str] = []
        if not headers.get("content-type", "").startswith("text/xml"):
            problems.append(f"Content-Type {headers.get('content-type')!r} is not text/xml")
        action = headers.get("soapaction", "").strip('"')
        try:
            root = parse_xml_safely(data)
        except (etree.XMLSyntaxError, ValueError) as exc:
            return action, None, None, [*problems, f"unreadable XML: {exc}"]
        address = root.findtext(f"{{{SOAP_ENV}}}Header/{{{REGISTRY}}}LogicalAddress")
        body = root.find(f"{{{SOAP_ENV}}}Body")
        elements = [] if body is None else [c for c in body if isinstance(c.tag, str)]
        if root.tag != f"{{{SOAP_ENV}}}Envelope" or len(elements) != 1:
            return (
                action,
                address,
                None,
                [*problems, "not a SOAP 1.1 envelope with one body element"],
            )
        if not (address or "").strip():
            problems.append("no LogicalAddress header")
        request = elements[0]
        if ACTIONS.get(request.tag) != action:
            problems.append(f"SOAPAction {action!r} does not fit {request.tag}")
        namespace = etree.QName(request).namespace or ""
        if namespace in self.schemas:
            with self._lock:
                schema = self.schemas[namespace]
                if not schema.validate(
                    etree.ElementTree(etree.fromstring(etree.tostring(request)))
                ):
                    problems += [f"XSD: {m}" for m in errors_of(schema)]
        else:
            problems.append(f"unknown contract {namespace!r}")
        return action, address, request, problems

    def answer(self, request: etree._Element) -> tuple[int, bytes]:
        mode, tag = self.mode, etree.QName(request).localname
        if mode == "fault":
            return 500, fault("Server", f"Intygstjänsten kunde inte svara för {PNR}")
        if tag == "ListActiveSickLeavesForCareUnit":
            if mode == "error":
                return 200, envelope(
                    active_answer("ERROR", f"Fel för patient {PNR}", certificates=False)
                )
            if mode == "info":
                return 200, envelope(
                    active_answer("INFO", "Svaret är ofullständigt", certificates=True)
                )
            if mode == "ok" and self.feed is not None:
                unit = request.findtext(f"{{{ACTIVE}}}enhets-id/{{{TYPES2}}}extension") or ""
                listing = self.feed.get(unit, "")
                return 200, envelope(active_answer("OK", None, certificates=False, listing=listing))
            if mode in ("ok", "invalid-answer"):
                return 200, envelope(
                    active_answer("OK", None, certificates=True, valid=mode == "ok")
                )
        if tag == "ListSickLeavesForCare" and mode in ("ok", "info"):
            return 200, envelope(care_answer())
        if tag == "StoreLog":
            codes = {
                "ok": "OK",
                "info": "INFO",
                "error": "ERROR",
                "validation-error": "VALIDATION_ERROR",
            }
            if mode in codes:
                text = None if mode == "ok" else f"Loggtjänsten: {codes[mode]} för {PNR}"
                return 200, envelope(store_answer(codes[mode], text))
        return 500, fault("Server", f"{mode} cannot be expressed in {tag}")

    def start(self) -> RivtaStub:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass  # quiet: answers carry patient numbers

            def do_POST(self) -> None:
                data = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                headers = {k.lower(): v for k, v in self.headers.items()}
                action, address, request, problems = stub.check(headers, data)
                mode = stub.mode
                if problems or request is None:
                    status, answer = 500, fault("Client", "; ".join(problems)[:2000])
                elif mode == "reset":
                    status, answer = 0, b""
                elif mode == "503":
                    status, answer = 503, b"<html><body>Service Unavailable</body></html>"
                else:
                    status, answer = stub.answer(request)
                stub.exchanges.append(
                    Exchange(action, address, request, status, answer, mode, problems)
                )
                if status == 0:
                    # SO_LINGER 0: close() sends RST, the client sees "connection reset".
                    self.connection.setsockopt(
                        socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                    )
                    self.close_connection = True
                    self.connection.close()
                    return
                self.send_response(status)
                kind = "text/html" if status == 503 else "text/xml; charset=UTF-8"
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def finish(self) -> None:
                with contextlib.suppress(OSError):  # the socket was reset on purpose
                    super().finish()

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        if self.tls is not None:
            server.socket = self.tls.wrap_socket(server.socket, server_side=True)
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="rivta-stub",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(5)
        self._server = self._thread = None


@contextmanager
def rivta_stub(tls: ssl.SSLContext | None = None) -> Iterator[RivtaStub]:
    stub = RivtaStub(tls).start()
    try:
        yield stub
    finally:
        stub.stop()
