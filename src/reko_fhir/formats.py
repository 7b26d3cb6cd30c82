"""FHIR JSON and XML: the only place that turns bytes into resources and back.

Reading is bounded (size, JSON nesting) and XML is parsed without DTDs, entities or network
(:mod:`reko_fhir.xmlsafe`). Every failure is a :class:`FormatError` with a message and, where
known, the FHIRPath of the element; no parser exception escapes. Output is byte-stable: the same
resource always gives the same bytes. See https://hl7.org/fhir/R4/json.html and
https://hl7.org/fhir/R4/xml.html.
"""

from __future__ import annotations

import json
from typing import Any

from fhir.resources.R4B import get_fhir_model_class
from fhir.resources.R4B.resource import Resource
from lxml import etree
from pydantic import ValidationError

from reko_fhir.xmlsafe import MAX_XML_BYTES, UnsafeXmlError, parse_xml_safely

FHIR_NS = "http://hl7.org/fhir"
MAX_BYTES = MAX_XML_BYTES
MAX_JSON_DEPTH = 100


class FormatError(ValueError):
    """The bytes are not a FHIR resource this project can read."""

    def __init__(self, message: str, expression: str | None = None) -> None:
        super().__init__(f"{expression}: {message}" if expression else message)
        self.message = message
        self.expression = expression


def resource_class(name: str) -> type[Resource]:
    """The R4B model class of resource type ``name``; FormatError for anything else."""
    try:
        cls = get_fhir_model_class(name)
    except (KeyError, ValueError, AttributeError):
        raise FormatError(f"'{name}' is not a FHIR resource type", "resourceType") from None
    if not issubclass(cls, Resource):
        raise FormatError(f"'{name}' is not a FHIR resource type", "resourceType")
    return cls


def json_depth(value: object) -> int:
    """Nesting depth, iteratively: a hostile document must not exhaust the Python stack."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, level = stack.pop()
        deepest = max(deepest, level)
        if deepest > MAX_JSON_DEPTH:
            return deepest
        children = (
            node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
        )
        stack.extend((child, level + 1) for child in children if isinstance(child, dict | list))
    return deepest


def _location(resource_type: str, loc: tuple[int | str, ...]) -> str:
    path = resource_type
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


def _validation_error(resource_type: str, exc: ValidationError) -> FormatError:
    first = exc.errors()[0]
    loc = tuple(p for p in first["loc"] if p != "__root__")
    message = first["msg"]
    if len(exc.errors()) > 1:
        message += f" (and {len(exc.errors()) - 1} more)"
    return FormatError(message, _location(resource_type, loc))


def _check_size(data: bytes, max_bytes: int) -> None:
    if len(data) > max_bytes:
        raise FormatError(f"the document is larger than {max_bytes} bytes")


def parse_json(data: bytes, *, max_bytes: int = MAX_BYTES) -> Resource:
    _check_size(data, max_bytes)
    try:
        # FHIR JSON is UTF-8; json.loads(bytes) would also guess UTF-16/32 from a BOM.
        doc = json.loads(data.decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise FormatError("the document is not UTF-8") from None
    except json.JSONDecodeError as exc:
        raise FormatError(f"not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except RecursionError:
        raise FormatError(f"JSON nested deeper than {MAX_JSON_DEPTH} levels") from None
    if json_depth(doc) > MAX_JSON_DEPTH:
        raise FormatError(f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
    return parse_json_object(doc)


def parse_json_object(doc: Any) -> Resource:
    """A resource from already-decoded FHIR JSON."""
    if not isinstance(doc, dict) or not isinstance(doc.get("resourceType"), str):
        raise FormatError("a FHIR resource is a JSON object with a resourceType", "resourceType")
    name = doc["resourceType"]
    cls = resource_class(name)
    try:
        return cls.model_validate(doc)
    except ValidationError as exc:
        raise _validation_error(name, exc) from None


def parse_xml(data: bytes, *, max_bytes: int = MAX_BYTES) -> Resource:
    _check_size(data, max_bytes)
    try:
        root = parse_xml_safely(data, max_bytes=max_bytes)
    except UnsafeXmlError as exc:
        raise FormatError(str(exc)) from None
    except etree.XMLSyntaxError as exc:
        raise FormatError(f"not well-formed XML: {exc.msg}") from None
    qname = etree.QName(root)
    if qname.namespace != FHIR_NS:
        raise FormatError(f"the root element is not in the FHIR namespace {FHIR_NS}")
    cls = resource_class(qname.localname)
    try:
        # The parsed tree is re-serialised, not the raw input, so nothing unsafe reaches the model.
        return cls.model_validate_xml(etree.tostring(root))
    except ValidationError as exc:
        raise _validation_error(qname.localname, exc) from None
    except (ValueError, TypeError, KeyError, etree.LxmlError) as exc:
        raise FormatError(f"not a valid FHIR {qname.localname}: {exc}") from None


def parse(data: bytes, content_type: str | None = None) -> Resource:
    """JSON or XML, by content type when given, else by the first non-blank byte."""
    if content_type:
        if "xml" in content_type:
            return parse_xml(data)
        if "json" in content_type:
            return parse_json(data)
    return parse_xml(data) if data.lstrip()[:1] == b"<" else parse_json(data)


def dump_json(resource: Resource) -> bytes:
    """FHIR JSON, indented, keys in element order, non-ASCII kept, newline at the end."""
    return (resource.model_dump_json(indent=2) + "\n").encode("utf-8")


def dump_xml(resource: Resource) -> bytes:
    """FHIR XML with an XML declaration, indented."""
    out: str | bytes = resource.model_dump_xml(pretty_print=True)
    return out.encode("utf-8") if isinstance(out, str) else out
