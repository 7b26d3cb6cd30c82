"""Formats in and out: FHIR JSON or XML by ``_format``, ``Accept`` and ``Content-Type``.

https://hl7.org/fhir/R4/http.html#mime-type. Bodies are read without typed models (so an
invalid resource reaches validation and gets its issues), and written through fhir.resources.
Reading is strict: FHIR bodies are UTF-8 (https://hl7.org/fhir/R4/http.html#mime-type), JSON
without repeated keys or NaN, XML without DTDs or entities, both bounded in size and nesting.
"""

from __future__ import annotations

import json
import re
from typing import Any

from lxml import etree

from reko_fhir.domain import mask_patient_ids
from reko_fhir.formats import (
    FHIR_NS,
    MAX_BYTES,
    MAX_JSON_DEPTH,
    FormatError,
    dump_xml,
    json_depth,
    load_json,
    parse_json_object,
)
from reko_fhir.outcomes import IssueCode, OperationOutcomeError, error
from reko_fhir.rest.transaction import MAX_ENTRIES as MAX_BUNDLE_ENTRIES
from reko_fhir.validation.xmljson import core_reader
from reko_fhir.xmlsafe import UnsafeXmlError, parse_xml_safely

JSON_TYPE = "application/fhir+json"
XML_TYPE = "application/fhir+xml"
# What a body may be declared as: the FHIR types, the plain ones, and the legacy DSTU2 ones.
JSON_TYPES = frozenset({JSON_TYPE, "application/json", "application/json+fhir"})
XML_TYPES = frozenset({XML_TYPE, "application/xml", "text/xml", "application/xml+fhir"})
Json = dict[str, Any]
_CHARSET = re.compile(r"""charset\s*=\s*["']?([^"';\s]*)""", re.IGNORECASE)
_XML_ENCODING = re.compile(rb"""^\s*<\?xml[^>]*?encoding\s*=\s*["']([^"']*)["']""")
# What no FHIR string holds and XML 1.0 cannot carry (https://www.w3.org/TR/xml/#charsets):
# control characters, lone surrogates (which no database encodes as UTF-8 either), U+FFFE/F.
_UNWRITABLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
# lxml reports errors of its own with the offending text; a message keeps this much of it.
_MESSAGE_LENGTH = 200


def wants_xml(format_param: str | None, accept: str | None) -> bool:
    chosen = (format_param or accept or "").lower()
    return "xml" in chosen and "json" not in chosen.split(",")[0]


def media_type(content_type: str | None) -> tuple[str, str | None]:
    """``application/fhir+json; charset=utf-8`` → ("application/fhir+json", "utf-8")."""
    kind, _, parameters = (content_type or "").partition(";")
    charset = _CHARSET.search(parameters)
    return kind.strip().lower(), charset.group(1).lower() if charset else None


def read_body(body: bytes, content_type: str | None) -> Json:
    """The request's resource as FHIR JSON; 400/413/415 OperationOutcomes for bad bodies."""
    if len(body) > MAX_BYTES:
        raise _bad(IssueCode.TOO_COSTLY, f"the body is larger than {MAX_BYTES} bytes", 413)
    kind, charset = media_type(content_type)
    if kind and kind not in JSON_TYPES | XML_TYPES:
        message = f"'{kind[:80]}' is not FHIR JSON or XML (send {JSON_TYPE} or {XML_TYPE})"
        raise _bad(IssueCode.NOT_SUPPORTED, message, 415)
    if charset is not None and charset not in ("utf-8", "utf8"):
        raise _bad(IssueCode.NOT_SUPPORTED, "FHIR bodies are UTF-8 (charset=utf-8)", 415)
    if not body.strip():
        raise _bad(IssueCode.STRUCTURE, "the request has no body", 400)
    # UTF-16 and UTF-32 text of ASCII characters is valid UTF-8 with NULs between them.
    if b"\x00" in body:
        raise _bad(IssueCode.STRUCTURE, "the body is not UTF-8 (it holds NUL bytes)", 400)
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as exc:
        message = f"the body is not UTF-8 (at byte {exc.start})"
        raise _bad(IssueCode.STRUCTURE, message, 400) from None
    if kind in XML_TYPES or (not kind and body.lstrip(b"\xef\xbb\xbf \t\r\n")[:1] == b"<"):
        doc: Any = _read_xml(body)
        if json_depth(doc) > MAX_JSON_DEPTH:  # load_json bounds JSON's nesting itself
            raise _bad(IssueCode.STRUCTURE, f"nested deeper than {MAX_JSON_DEPTH} levels", 400)
    else:
        try:
            doc = load_json(body)
        except FormatError as exc:
            raise _bad(IssueCode.STRUCTURE, str(exc), 400) from None
    if not isinstance(doc, dict) or not isinstance(doc.get("resourceType"), str):
        raise _bad(IssueCode.STRUCTURE, "a FHIR resource is an object with a resourceType", 400)
    check_tree(doc)
    return doc


def check_tree(doc: Json) -> None:
    """What no FHIR resource holds, whatever its profile: control characters, lone surrogates
    and U+FFFE/U+FFFF in a string (https://hl7.org/fhir/R4/datatypes.html#string; XML could
    not carry them, so a stored one could never be read as XML), and a Bundle of more entries
    than one request may hold (each entry is validated and written in one unit)."""
    stack: list[Any] = [doc]
    while stack:
        node = stack.pop()
        if isinstance(node, str):
            found = _UNWRITABLE.search(node)
            if found:
                message = f"a string holds U+{ord(found.group()):04X}, which FHIR cannot carry"
                raise _bad(IssueCode.STRUCTURE, message, 400)
        elif isinstance(node, list):
            stack.extend(node)
        elif isinstance(node, dict):
            if node.get("resourceType") == "Bundle":
                entries = node.get("entry")
                if isinstance(entries, list) and len(entries) > MAX_BUNDLE_ENTRIES:
                    message = f"a Bundle holds more than {MAX_BUNDLE_ENTRIES} entries"
                    raise _bad(IssueCode.TOO_COSTLY, message, 413)
            stack.extend(node.keys())
            stack.extend(node.values())


def _read_xml(body: bytes) -> Json:
    declared = _XML_ENCODING.match(body.removeprefix(b"\xef\xbb\xbf")[:200])
    if declared and declared.group(1).lower() not in (b"utf-8", b"utf8"):
        raise _bad(IssueCode.STRUCTURE, "FHIR XML is UTF-8 (encoding='UTF-8')", 400)
    try:
        root = parse_xml_safely(body)
    except UnsafeXmlError as exc:
        raise _bad(IssueCode.SECURITY, f"not acceptable XML: {exc}", 400) from None
    except etree.XMLSyntaxError as exc:
        raise _bad(IssueCode.STRUCTURE, f"not well-formed XML: {exc.msg}", 400) from None
    name = etree.QName(root)
    if name.namespace != FHIR_NS or not name.localname[:1].isupper():
        message = f"the root element is not a resource in the FHIR namespace {FHIR_NS}"
        raise _bad(IssueCode.STRUCTURE, message, 400)
    try:
        return core_reader().resource(root)
    except (ValueError, LookupError, TypeError, RecursionError, etree.LxmlError):
        raise _bad(IssueCode.STRUCTURE, "the XML is not a FHIR resource", 400) from None


def write_body(resource: Json, xml: bool) -> tuple[bytes, str]:
    if not xml:
        return json.dumps(resource, ensure_ascii=False).encode("utf-8"), JSON_TYPE
    return dump_xml(parse_json_object(resource)), XML_TYPE


def _bad(code: IssueCode, message: str, status: int) -> OperationOutcomeError:
    """A refusal whose text may quote the body: personnummer masked, length bounded."""
    text = mask_patient_ids(message)
    if len(text) > _MESSAGE_LENGTH:
        text = text[:_MESSAGE_LENGTH] + "…"
    return OperationOutcomeError([error(code, text, None)], status=status)
