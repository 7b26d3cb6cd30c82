"""FHIR JSON/XML reading: bounded, safe, and every failure a FormatError with a location."""

from __future__ import annotations

import json

import pytest
from fhir.resources.R4B.patient import Patient
from hypothesis import given, settings
from hypothesis import strategies as st

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


def test_dump_json_is_the_plain_json_of_the_model_with_primitive_extensions() -> None:
    """The byte form the golden files rely on: element order, ``_element``, non-ASCII kept."""
    doc = {
        **PROCEDURE,
        "_status": {"extension": [{"url": "http://example.se/x", "valueString": "ä"}]},
    }
    resource = parse_json(json.dumps(doc).encode())
    plain = json.dumps(
        resource.model_dump(mode="json", by_alias=True, exclude_none=True),
        ensure_ascii=False,
        indent=2,
    )
    assert dump_json(resource) == (plain + "\n").encode()
    assert json.loads(dump_json(resource))["_status"] == doc["_status"]
    assert parse_xml(dump_xml(resource)) == resource


@pytest.mark.parametrize(
    "payload",
    [
        # UTF-16: the raw-byte scan cannot see these; the parser or the tree's docinfo does.
        '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE P [<!ENTITY x SYSTEM'
        ' "file:///etc/passwd">]><Procedure xmlns="http://hl7.org/fhir"><status value="&x;"/>'
        "</Procedure>".encode("utf-16"),
        '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE P [<!ENTITY x "completed">]>'
        '<Procedure xmlns="http://hl7.org/fhir"><status value="&x;"/></Procedure>'.encode("utf-16"),
        # A DOCTYPE after a long prolog.
        b"<?xml version='1.0'?>" + b"\n" * 5000 + b'<!DOCTYPE Procedure [<!ENTITY x "y">]>'
        b'<Procedure xmlns="http://hl7.org/fhir"><status value="&x;"/></Procedure>',
    ],
    ids=["utf-16-external", "utf-16-internal", "late-doctype"],
)
def test_a_hidden_doctype_is_refused_too(payload: bytes) -> None:
    with pytest.raises(FormatError) as caught:
        parse_xml(payload)
    assert "DOCTYPE" in caught.value.message or "entity" in caught.value.message
    assert "root:" not in str(caught.value), "nothing of /etc/passwd is read"


def test_xml_comments_and_processing_instructions_are_harmless() -> None:
    resource = parse_json(json.dumps(PROCEDURE).encode())
    with_pi = dump_xml(resource).replace(b"<status", b"<?pi x?><status", 1)
    assert parse_xml(with_pi) == resource
    # fhir.resources keeps an XML comment as ``fhir_comments`` of the next element; the
    # resource's content is otherwise the same.
    with_comment = dump_xml(resource).replace(b"<status", b"<!-- a comment --><status", 1)
    parsed = json.loads(dump_json(parse_xml(with_comment)))
    assert parsed.pop("_status") == {"fhir_comments": " a comment "}
    assert parsed == json.loads(dump_json(resource))


def test_oversize_input_is_refused_in_every_entry_point() -> None:
    resource = parse_json(json.dumps(PROCEDURE).encode())
    for data in (dump_json(resource), dump_xml(resource)):
        with pytest.raises(FormatError, match="larger than 200 bytes"):
            parse(data, max_bytes=200)
    with pytest.raises(FormatError, match="larger than 200 bytes"):
        parse_xml(dump_xml(resource), max_bytes=200)


def test_deep_xml_is_refused() -> None:
    depth = MAX_JSON_DEPTH + 5
    body = b"<extension url='x'>" * depth + b"</extension>" * depth
    xml = b"<Basic xmlns='http://hl7.org/fhir'>" + body + b"</Basic>"
    with pytest.raises(FormatError, match="nested deeper"):
        parse_xml(xml)


@pytest.mark.parametrize(
    ("payload", "message", "expression"),
    [
        (
            b'{"resourceType": "Procedure", "status": "completed", "status": "x"}',
            "'status' occurs twice",
            None,
        ),
        (b'{"resourceType": "Patient", "multipleBirthInteger": NaN}', "NaN", None),
        (b'{"resourceType": "Resource", "id": "a"}', "not a FHIR resource type", "resourceType"),
        (b'{"resourceType": "DomainResource"}', "not a FHIR resource type", "resourceType"),
        (b'{"resourceType": "Coding"}', "not a FHIR resource type", "resourceType"),
        (
            b'{"resourceType": "Bundle", "type": "collection",'
            b' "entry": [{"resource": {"resourceType": "Diagnosis"}}]}',
            "'Diagnosis' is not a FHIR resource type",
            "Bundle.entry[0].resource.resourceType",
        ),
        (
            b'{"resourceType": "Patient", "name": [{"family": "a\\u0007b"}]}',
            "control character",
            "Patient.name[0].family",
        ),
        (
            b'{"resourceType": "Patient", "contained": [{"resourceType": 5}]}',
            "resourceType must be a string",
            "Patient.contained[0].resourceType",
        ),
        (
            b'{"resourceType": "Bundle", "type": "collection", "entry": [{"resource":'
            b' {"resourceType": "Patient"}}, {"resource": {"resourceType": "Patient",'
            b' "active": "maybe"}}]}',
            "valid boolean",
            "Bundle.entry[1].resource.active",
        ),
    ],
)
def test_more_bad_json(payload: bytes, message: str, expression: str | None) -> None:
    with pytest.raises(FormatError) as caught:
        parse_json(payload)
    assert message in caught.value.message
    assert caught.value.expression == expression


@pytest.mark.parametrize(
    ("payload", "message", "expression"),
    [
        (
            b"<Bundle xmlns='http://hl7.org/fhir'><type value='collection'/><entry><resource>"
            b"<Patient><active value='true'/></Patient></resource></entry><entry><resource>"
            b"<Patient><active value='maybe'/></Patient></resource></entry></Bundle>",
            "valid boolean",
            # fhir.resources reports this at "active" of the inner Patient; the real path is
            # recovered by reading the same tree as JSON.
            "Bundle.entry[1].resource.active",
        ),
        (
            b"<Procedure xmlns='http://hl7.org/fhir'><status value='completed'/><code><coding>"
            b"<userSelected value='x'/></coding></code><subject><reference value='Patient/1'/>"
            b"</subject></Procedure>",
            "valid boolean",
            "Procedure.code.coding[0].userSelected",
        ),
        (
            b"<Bundle xmlns='http://hl7.org/fhir'><type value='collection'/><entry><resource>"
            b"<Diagnosis/></resource></entry></Bundle>",
            "'Diagnosis' is not a FHIR resource type",
            None,
        ),
    ],
)
def test_bad_xml_is_located_where_it_can_be(
    payload: bytes, message: str, expression: str | None
) -> None:
    with pytest.raises(FormatError) as caught:
        parse_xml(payload)
    assert message in caught.value.message
    assert caught.value.expression == expression


def test_a_resource_xml_cannot_carry_is_a_format_error_when_written() -> None:
    # Built directly: parse_json would already refuse it.
    resource = Patient.model_validate({"resourceType": "Patient", "name": [{"family": "a\x00"}]})
    with pytest.raises(FormatError, match="cannot be written as FHIR XML"):
        dump_xml(resource)


def test_parse_honours_content_type_parameters() -> None:
    resource = parse_json(json.dumps(PROCEDURE).encode())
    assert parse(dump_json(resource), "application/fhir+json; charset=utf-8") == resource
    with pytest.raises(FormatError, match="not JSON"):
        parse(dump_xml(resource), "application/fhir+json")


_JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.sampled_from(["resourceType", "status", "entry", "resource", "code", "id", "_x"]),
            inner | st.sampled_from(["Patient", "Bundle", "Nonsense", "completed"]),
            max_size=4,
        )
    ),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(_JSON_VALUES)
def test_any_json_is_a_resource_or_a_format_error(value: object) -> None:
    try:
        parse_json(json.dumps(value).encode())
    except FormatError as exc:
        message = exc.message
    else:
        return
    assert message
