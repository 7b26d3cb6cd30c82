"""FHIR JSON/XML reading: bounded, safe, and every failure a FormatError with a location."""

from __future__ import annotations

import json

import pytest

from reko_fhir.formats import (
    MAX_JSON_DEPTH,
    FormatError,
    dump_json,
    dump_xml,
    parse,
    parse_json,
    parse_xml,
)

PROCEDURE = {
    "resourceType": "Procedure",
    "status": "completed",
    "code": {"coding": [{"system": "urn:oid:1.2.752.116.1.3.2.1.4", "code": "GC001"}]},
    "subject": {"reference": "Patient/p1"},
    "performedDateTime": "2025-03-05T09:30:00+01:00",
    "note": [{"text": "Samtal om återgång, å ä ö"}],
}


def test_json_and_xml_round_trip_byte_stably() -> None:
    resource = parse_json(json.dumps(PROCEDURE).encode())
    as_json, as_xml = dump_json(resource), dump_xml(resource)
    assert parse_json(as_json) == resource
    assert parse_xml(as_xml) == resource
    assert dump_json(parse_json(as_json)) == as_json
    assert dump_xml(parse_xml(as_xml)) == as_xml
    assert "återgång, å ä ö".encode() in as_json, "non-ASCII is kept, not escaped"
    assert as_xml.startswith(b"<?xml")


def test_parse_detects_the_format_by_content() -> None:
    resource = parse_json(json.dumps(PROCEDURE).encode())
    assert parse(dump_xml(resource)) == resource
    assert parse(b"  \n" + dump_json(resource)) == resource
    assert parse(dump_xml(resource), "application/fhir+xml") == resource


@pytest.mark.parametrize(
    "payload",
    [
        b'<?xml version="1.0"?><!DOCTYPE Procedure [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        b'<Procedure xmlns="http://hl7.org/fhir"><status value="&x;"/></Procedure>',
        b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">'
        b'<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;">]><Procedure xmlns="http://hl7.org/fhir">'
        b'<status value="&lol3;"/></Procedure>',
        b'<!DOCTYPE Procedure SYSTEM "http://127.0.0.1:9/evil.dtd"><Procedure xmlns="http://hl7.org/fhir"/>',
    ],
    ids=["xxe-file", "billion-laughs", "external-dtd"],
)
def test_xml_with_a_doctype_is_refused(payload: bytes) -> None:
    with pytest.raises(FormatError, match="DOCTYPE"):
        parse_xml(payload)


def test_oversize_input_is_refused_before_parsing() -> None:
    with pytest.raises(FormatError, match="larger than 100 bytes"):
        parse_json(json.dumps(PROCEDURE).encode(), max_bytes=100)


def test_deep_json_is_refused() -> None:
    deep = (
        '{"resourceType": "Basic", "extension": '
        + "[" * (MAX_JSON_DEPTH + 5)
        + "]" * (MAX_JSON_DEPTH + 5)
        + "}"
    )
    with pytest.raises(FormatError, match="nested deeper"):
        parse_json(deep.encode())
    very_deep = "[" * 100_000 + "]" * 100_000
    with pytest.raises(FormatError, match="nested deeper"):
        parse_json(very_deep.encode())


@pytest.mark.parametrize(
    ("payload", "message", "expression"),
    [
        (b'{"resourceType": "Procedure",', "not JSON", None),
        (b"\xff\xfe{}", "not UTF-8", None),
        (b"[1, 2]", "JSON object with a resourceType", "resourceType"),
        (
            b'{"resourceType": "Diagnosis"}',
            "'Diagnosis' is not a FHIR resource type",
            "resourceType",
        ),
        (
            json.dumps({**PROCEDURE, "performedDateTime": "tuesday"}).encode(),
            "",
            "Procedure.performedDateTime",
        ),
        (
            json.dumps({**PROCEDURE, "note": [{"text": "x", "author": 5}]}).encode(),
            "",
            "Procedure.note[0]",
        ),
    ],
)
def test_bad_json_is_a_located_format_error(
    payload: bytes, message: str, expression: str | None
) -> None:
    with pytest.raises(FormatError) as caught:
        parse_json(payload)
    assert message in caught.value.message
    if expression is None:
        assert caught.value.expression is None
    else:
        assert caught.value.expression is not None
        assert caught.value.expression.startswith(expression)


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (
            b"<Procedure xmlns='http://hl7.org/fhir'><status value='completed'/>",
            "not well-formed XML",
        ),
        (b"<Procedure><status value='completed'/></Procedure>", "not in the FHIR namespace"),
        (b"<Nonsense xmlns='http://hl7.org/fhir'/>", "'Nonsense' is not a FHIR resource type"),
    ],
)
def test_bad_xml_is_a_format_error(payload: bytes, message: str) -> None:
    with pytest.raises(FormatError, match=message):
        parse_xml(payload)
