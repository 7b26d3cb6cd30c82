"""The request checks (rest/inputs.py) and body reading (rest/negotiation.py), in-process."""

from __future__ import annotations

import json

import pytest

from reko_fhir.outcomes import OperationOutcomeError
from reko_fhir.rest.inputs import check_entry, check_request
from reko_fhir.rest.messages import FhirRequest
from reko_fhir.rest.negotiation import MAX_BUNDLE_ENTRIES, read_body
from reko_fhir.xmlsafe import declares_dtd

PNR = "191212121212"
SYSTEM = "http://electronichealth.se/identifier/personnummer"


def refusal(request: FhirRequest) -> OperationOutcomeError:
    with pytest.raises(OperationOutcomeError) as caught:
        check_request(request)
    assert caught.value.status == 400
    assert PNR not in str(caught.value)
    return caught.value


@pytest.mark.parametrize(
    ("path", "query"),
    [
        ("metadata", ()),
        ("", ()),
        ("Patient", (("identifier", f"{SYSTEM}|{PNR}"),)),
        ("Patient", (("identifier", PNR), ("_count", "10"), ("_offset", "20"))),
        ("Procedure", (("patient.identifier", f"system|{PNR}"),)),
        ("Procedure", (("subject.identifier", PNR), ("_include", "Procedure:patient"))),
        ("Procedure", (("date", "ge2024-01-01T00:00:00+01:00"),)),
        ("Procedure", (("date", "ge2024-01-01T00:00:00 01:00"),)),  # an unencoded '+'
        ("Procedure", (("date", "lt2025-03"), ("date", "ge2024"))),
        ("Communication", (("sent", "2025-03-14"),)),
        ("Patient", (("_lastUpdated", "gt2024-01-01T10:00:00.123Z"),)),
        ("Patient", (("_sort", "-_lastUpdated"),)),
        ("Patient", (("_sort", "_id,-_lastUpdated"),)),
        ("Patient", (("_summary", "count"), ("_format", "application/fhir json"))),
        ("Patient", (("_format", "xml"), ("_pretty", "true"))),
        ("Patient", (("_id", "abc-1.2,def"),)),
        ("Procedure", (("patient", "Patient/abc"), ("subject", "abc,Patient/def"))),
        ("Procedure", (("code", "urn:oid:1.2.752.116.1.3.2.1.4|GC001"),)),
        ("Procedure", (("status", "completed"), ("category", "extern-samverkan"))),
        ("Patient", (("identifier:missing", "false"),)),
        ("Patient", (("shoeSize", "44"),)),  # unknown: the router decides (lenient or strict)
        ("Patient", (("_count", "10000"),)),  # capped at 1000 by the router, not refused
        ("Patient/abc-123.x", ()),
        ("Patient/abc/_history", ()),
        ("Patient/abc/_history/12", ()),
        ("Patient/abc/$everything", ()),
        ("Patient/$validate", ()),
        ("Patient/_history", ()),
        ("Patient/" + "a" * 64, ()),
    ],
)
def test_legitimate_requests_pass(path: str, query: tuple[tuple[str, str], ...]) -> None:
    check_request(FhirRequest("GET", path, query))


@pytest.mark.parametrize(
    "path",
    [
        "Patient/../../etc/passwd",
        "Patient/..",
        "Patient/.",
        "Patient/a\x00b",
        "Patient/a\\b",
        "Patient/" + "a" * 65,
        "Patient/a b",
        f"Patient/{PNR}'",
        "Patient/abc/_history/1;--",
        "Patient/abc/$shell",
        "$shell",
        "Patient/abc/_history/1/x",
        "Pat;ient",
    ],
)
def test_bad_paths_are_refused(path: str) -> None:
    refusal(FhirRequest("GET", path))


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("identifier", "' OR 1=1--"),
        ("identifier", f'{PNR}"; DROP TABLE x'),
        ("_id", "1;DROP TABLE resource_current"),
        ("_sort", "1;DELETE"),
        ("date", "ge2024' OR '1'='1"),
        ("date", PNR),
        ("_lastUpdated", "gequarter"),
        ("patient", "Patient/1' OR '1'='1"),
        ("patient.identifier", 'x";--'),
        ("a';--", "1"),
        (f"_{PNR}", "1"),
        ("x" * 65, "1"),
        ("identifier", "abc\x01def"),
        ("identifier", "a" * 1025),
        ("_count", "10000000000000000000000"),
        ("_count", "-1"),
        ("_count", "abc"),
        ("_offset", "-50"),
        ("_format", "application/x-shellscript"),
        ("_summary", "everything"),
        ("_include", "Procedure:patient;--"),
        ("identifier:missing", "maybe"),
    ],
)
def test_bad_parameters_are_refused_naming_the_parameter(name: str, value: str) -> None:
    refused = refusal(FhirRequest("GET", "Patient", ((name, value),)))
    if len(name) <= 64 and PNR not in name and (name.isidentifier() or "." in name or ":" in name):
        assert refused.issues[0].expression == name


def test_too_many_parameters_are_refused() -> None:
    refusal(FhirRequest("GET", "Patient", tuple((f"p{i}", "1") for i in range(101))))
    check_request(FhirRequest("GET", "Patient", tuple((f"p{i}", "1") for i in range(100))))


@pytest.mark.parametrize(
    ("header", "value"),
    [
        ("if-match", "garbage"),
        ("if-none-exist", '{"identifier": "' + PNR + '"}'),
        ("if-none-exist", "identifier=' OR 1=1--"),
        ("if-none-exist", ""),
    ],
)
def test_bad_headers_are_refused(header: str, value: str) -> None:
    refusal(FhirRequest("POST", "Patient", headers={header: value}))


def test_good_headers_pass() -> None:
    headers = {"if-match": 'W/"3"', "if-none-exist": f"identifier={SYSTEM}|{PNR}"}
    check_request(FhirRequest("PUT", "Patient/abc", headers=headers))


def test_a_refused_id_is_shown_masked() -> None:
    refused = refusal(FhirRequest("GET", f"Patient/{PNR}'"))
    assert "19121212-****" in refused.issues[0].diagnostics


def test_entries_are_checked_like_requests() -> None:
    check_entry("Patient/abc", None, "Bundle.entry[0].request")
    check_entry(f"Patient?identifier={SYSTEM}|{PNR}", f"identifier={PNR}", "e")
    with pytest.raises(OperationOutcomeError) as caught:
        check_entry("Patient/../../etc/passwd", None, "Bundle.entry[1].request")
    assert caught.value.issues[0].expression == "Bundle.entry[1].request"
    with pytest.raises(OperationOutcomeError):
        check_entry("Patient", "identifier=' OR 1=1--", "e")


# -- bodies ----------------------------------------------------------------------------------
PATIENT = {"resourceType": "Patient", "identifier": [{"system": SYSTEM, "value": PNR}]}


def body_refusal(body: bytes, content_type: str | None = "application/fhir+json") -> int:
    with pytest.raises(OperationOutcomeError) as caught:
        read_body(body, content_type)
    assert PNR not in str(caught.value)
    assert len(caught.value.issues[0].diagnostics) <= 201
    return caught.value.status


@pytest.mark.parametrize(
    "content_type",
    [
        "application/fhir+json",
        "application/json",
        "application/fhir+json; charset=utf-8",
        "application/fhir+json;fhirVersion=4.0",
        "application/json+fhir",
        None,
        "",
    ],
)
def test_json_bodies_are_read(content_type: str | None) -> None:
    assert read_body(json.dumps(PATIENT).encode(), content_type) == PATIENT


@pytest.mark.parametrize(
    "content_type", ["application/fhir+xml", "application/xml", "text/xml", None]
)
def test_xml_bodies_are_read(content_type: str | None) -> None:
    xml = b'<?xml version="1.0" encoding="UTF-8"?><Patient xmlns="http://hl7.org/fhir"><gender value="male"/></Patient>'
    assert read_body(xml, content_type) == {"resourceType": "Patient", "gender": "male"}


@pytest.mark.parametrize(
    ("content_type", "status"),
    [
        ("text/plain", 415),
        ("application/x-www-form-urlencoded", 415),
        ("multipart/form-data; boundary=x", 415),
        ("application/x-json-xml-evil", 415),
        ("application/fhir+json; charset=utf-16", 415),
        ("application/fhir+json; charset=latin1", 415),
    ],
)
def test_other_media_types_are_unsupported(content_type: str, status: int) -> None:
    assert body_refusal(json.dumps(PATIENT).encode(), content_type) == status


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"  \n",
        b'{"resourceType": "Patient", "x": "\xff"}',
        json.dumps(PATIENT).encode("utf-16"),
        json.dumps(PATIENT).encode("utf-16-le"),
        json.dumps(PATIENT).encode("utf-32"),
        b'{"resourceType": "Patient", "x": NaN}',
        b'{"resourceType": "Patient", "x": Infinity}',
        b'{"resourceType": "Patient", "x": 1e400}',
        b'{"resourceType": "Patient", "x": ' + b"9" * 5000 + b"}",
        b'{"resourceType": "Patient", "' + PNR.encode() + b'": 1, "' + PNR.encode() + b'": 2}',
        b'{"resourceType": "Patient", "x": ' + b"[" * 10_000 + b"]" * 10_000 + b"}",
        b'{"resourceType": "Patient", "x": ' + b'{"a": ' * 10_000 + b"1" + b"}" * 10_000 + b"}",
        b'{"resourceType": "Patient", "x": ' + b"[" * 150 + b"]" * 150 + b"}",
        b"[]",
        b'"Patient"',
        b"42",
        b'{"gender": "male"}',
        b'{"resourceType": "Patient", "name": [{"family": "a\\u0000b"}]}',
        b'{"resourceType": "Patient", "name": [{"family": "a\\u001bb"}]}',
        b'{"resourceType": "Patient", "x\\u0001": 1}',
    ],
)
def test_unreadable_json_is_400(body: bytes) -> None:
    assert body_refusal(body) == 400


@pytest.mark.parametrize(
    "body",
    [
        b'<!DOCTYPE Patient [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        b'<Patient xmlns="http://hl7.org/fhir"><gender value="&x;"/></Patient>',
        b"<?xml version='1.0'?>" + b"<!-- x -->\n" * 1000 + b'<!DOCTYPE Patient [<!ENTITY x "y">]>'
        b'<Patient xmlns="http://hl7.org/fhir"/>',
        '<!DOCTYPE Patient [<!ENTITY x "y">]><Patient xmlns="http://hl7.org/fhir"/>'.encode(
            "utf-16"
        ),
        '<!DOCTYPE Patient [<!ENTITY x "y">]><Patient xmlns="http://hl7.org/fhir"/>'.encode(
            "utf-16-be"
        ),
        b'<Patient xmlns="http://hl7.org/fhir"><gender value="&x;"/></Patient>',
        b'<Patient xmlns="http://hl7.org/fhir">'
        + b"<extension url='x'>" * 10_000
        + b"</extension>" * 10_000
        + b"</Patient>",
        b"<Patient><gender value='male'/></Patient>",
        b"<?xml version='1.0' encoding='ISO-8859-1'?><Patient xmlns='http://hl7.org/fhir'/>",
        b"<Patient xmlns='http://hl7.org/fhir'>",
        b"<patient xmlns='http://hl7.org/fhir'/>",
    ],
)
def test_unsafe_or_unreadable_xml_is_400(body: bytes) -> None:
    assert body_refusal(body, "application/fhir+xml") == 400


def test_a_doctype_is_refused_when_sniffed_too() -> None:
    body = b'<!DOCTYPE P [<!ENTITY x "y">]><Patient xmlns="http://hl7.org/fhir"/>'
    assert body_refusal(body, None) == 400


def test_oversize_bodies_and_bundles_are_413() -> None:
    assert body_refusal(b" " * (10 * 1024 * 1024 + 1)) == 413
    entry = {"request": {"method": "POST", "url": "Patient"}, "resource": PATIENT}
    bundle = {"resourceType": "Bundle", "type": "transaction"}
    many = {**bundle, "entry": [entry] * (MAX_BUNDLE_ENTRIES + 1)}
    assert body_refusal(json.dumps(many).encode()) == 413
    enough = {**bundle, "entry": [entry] * MAX_BUNDLE_ENTRIES}
    assert len(read_body(json.dumps(enough).encode(), None)["entry"]) == MAX_BUNDLE_ENTRIES


@pytest.mark.parametrize(
    "encoding", ["ascii", "utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be", "cp037"]
)
def test_declarations_are_found_in_every_encoding(encoding: str) -> None:
    assert declares_dtd('<?xml version="1.0"?><!DOCTYPE a><a/>'.encode(encoding))
    assert declares_dtd('<!ENTITY x "y">'.encode(encoding))
    assert not declares_dtd('<a xmlns="http://hl7.org/fhir"/>'.encode(encoding))
