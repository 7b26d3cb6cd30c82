"""FHIR JSON and XML: the only place that turns bytes into resources and back.

Reading is bounded (size, nesting) and XML is parsed without DTDs, entities or network
(:mod:`reko_fhir.xmlsafe`). Every failure is a :class:`FormatError` with a message and, where
known, the FHIRPath of the element; no parser exception escapes. Output is byte-stable: the same
resource always gives the same bytes. See https://hl7.org/fhir/R4/json.html and
https://hl7.org/fhir/R4/xml.html.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any, NoReturn

from fhir.resources.R4B import get_fhir_model_class
from fhir.resources.R4B.resource import Resource
from lxml import etree
from pydantic import ValidationError

from reko_fhir.xmlsafe import MAX_XML_BYTES, UnsafeXmlError, parse_xml_safely

FHIR_NS = "http://hl7.org/fhir"
MAX_BYTES = MAX_XML_BYTES
MAX_JSON_DEPTH = 100
# Abstract base types: https://hl7.org/fhir/R4/resource.html, .../domainresource.html.
_ABSTRACT = frozenset({"Resource", "DomainResource"})
# Exceptions fhir.resources raises besides ValidationError on some malformed input (e.g. a
# nested resourceType that is not a string); they must become FormatErrors, not tracebacks.
_MODEL_FAILURES = (ValueError, TypeError, KeyError, AttributeError, IndexError)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


class FormatError(ValueError):
    """Bytes that are not a FHIR resource this project can read, or a resource it cannot write."""

    def __init__(self, message: str, expression: str | None = None) -> None:
        super().__init__(f"{expression}: {message}" if expression else message)
        self.message = message
        self.expression = expression


def resource_class(name: str, expression: str | None = "resourceType") -> type[Resource]:
    """The R4B model class of resource type ``name``; FormatError for anything else."""
    if name in _ABSTRACT or not name[:1].isupper():
        raise FormatError(f"'{name}' is not a FHIR resource type", expression)
    try:
        cls = get_fhir_model_class(name)
    except (KeyError, ValueError, AttributeError):
        raise FormatError(f"'{name}' is not a FHIR resource type", expression) from None
    if not issubclass(cls, Resource):
        raise FormatError(f"'{name}' is not a FHIR resource type", expression)
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
    errors = exc.errors()
    first = errors[0]
    # fhir.resources validates some elements in a model validator, which pydantic reports at a
    # pseudo-field "root"/"__root__"; no FHIR element has that name, so it is dropped.
    loc = tuple(p for p in first["loc"] if p not in ("__root__", "root"))
    message = first["msg"]
    if len(errors) > 1:
        message += f" (and {len(errors) - 1} more)"
    return FormatError(message, _location(resource_type, loc))


def _check_size(data: bytes, max_bytes: int) -> None:
    if len(data) > max_bytes:
        raise FormatError(f"the document is larger than {max_bytes} bytes")


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # FHIR JSON forbids repeated keys; json.loads would silently keep the last one, so two
    # readers could see two different resources in the same bytes.
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise FormatError(f"the property '{key}' occurs twice in one object")
        out[key] = value
    return out


def _no_constant(name: str) -> NoReturn:
    raise FormatError(f"not JSON: {name} is not a JSON number")


def _finite(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):  # 1e999: JSON has no infinity, and it cannot be written back
        raise FormatError(f"not JSON: the number {text[:20]} is out of range")
    return number


def load_json(data: bytes, *, max_bytes: int = MAX_BYTES) -> Any:
    """Strict JSON from UTF-8 bytes, not yet a resource: bounded in size and nesting, no
    repeated keys, no NaN or Infinity, no number beyond range; FormatError for anything else."""
    _check_size(data, max_bytes)
    try:
        # FHIR JSON is UTF-8; json.loads(bytes) would also guess UTF-16/32 from a BOM.
        doc = json.loads(
            data.decode("utf-8-sig"),
            object_pairs_hook=_no_duplicate_keys,
            parse_constant=_no_constant,
            parse_float=_finite,
        )
    except UnicodeDecodeError:
        raise FormatError("the document is not UTF-8") from None
    except json.JSONDecodeError as exc:
        raise FormatError(f"not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except RecursionError:
        raise FormatError(f"JSON nested deeper than {MAX_JSON_DEPTH} levels") from None
    except FormatError:
        raise
    except ValueError:  # an integer of more digits than int() converts (sys.int_info)
        raise FormatError("not JSON: a number has too many digits") from None
    if json_depth(doc) > MAX_JSON_DEPTH:
        raise FormatError(f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
    return doc


def parse_json(data: bytes, *, max_bytes: int = MAX_BYTES) -> Resource:
    """A resource from FHIR JSON bytes (UTF-8); FormatError for anything else."""
    return parse_json_object(load_json(data, max_bytes=max_bytes))


def _check_json_tree(doc: dict[str, Any], name: str) -> None:
    """What the model does not check: nested resource types and control characters.

    ``resourceType`` is no element name of any FHIR data type, so an object holding it is a
    resource (contained, Bundle.entry.resource…); fhir.resources fails on an unknown one with a
    KeyError. Strings must not hold control characters other than tab, CR and LF
    (https://hl7.org/fhir/R4/datatypes.html#string): XML cannot carry them, so such a resource
    could be read from JSON but never written as XML.
    """
    stack: list[tuple[Any, str]] = [(v, f"{name}.{k}") for k, v in doc.items()]
    while stack:
        node, path = stack.pop()
        if isinstance(node, str):
            if _CONTROL.search(node):
                raise FormatError("a string holds a control character", path)
        elif isinstance(node, list):
            stack.extend((item, f"{path}[{i}]") for i, item in enumerate(node))
        elif isinstance(node, dict):
            if "resourceType" in node:
                kind = node["resourceType"]
                if not isinstance(kind, str):
                    raise FormatError("resourceType must be a string", f"{path}.resourceType")
                resource_class(kind, f"{path}.resourceType")
            stack.extend((v, f"{path}.{k}") for k, v in node.items())


def parse_json_object(doc: Any) -> Resource:
    """A resource from already-decoded FHIR JSON."""
    if not isinstance(doc, dict) or not isinstance(doc.get("resourceType"), str):
        raise FormatError("a FHIR resource is a JSON object with a resourceType", "resourceType")
    name = doc["resourceType"]
    cls = resource_class(name)
    _check_json_tree(doc, name)
    try:
        return cls.model_validate(doc)
    except ValidationError as exc:
        raise _validation_error(name, exc) from None
    except _MODEL_FAILURES as exc:
        raise FormatError(f"not a valid FHIR {name}: {exc}") from None


def _check_xml_tree(root: etree._Element) -> None:
    """Bounded nesting, and every nested resource of a known type.

    FHIR element names start with a lower-case letter and resource names with an upper-case
    one (https://hl7.org/fhir/R4/xml.html), so an upper-case FHIR element is a resource.
    """
    stack: list[tuple[etree._Element, int]] = [(root, 1)]
    while stack:
        element, level = stack.pop()
        if level > MAX_JSON_DEPTH:
            raise FormatError(f"XML nested deeper than {MAX_JSON_DEPTH} levels")
        qname = etree.QName(element)
        if qname.namespace != FHIR_NS:
            continue  # the XHTML of a narrative, checked by the model
        if level > 1 and qname.localname[:1].isupper():
            resource_class(qname.localname, None)
        stack.extend((child, level + 1) for child in element if isinstance(child.tag, str))


def _xml_validation_error(
    root: etree._Element, cls: type[Resource], exc: ValidationError
) -> FormatError:
    """A located FormatError for a model error found while reading XML.

    fhir.resources builds nested models from XML bottom-up, so a ValidationError from inside a
    nested resource or data type carries a location relative to that inner model only. To
    report the element's real path, the same tree is read as FHIR JSON (by the definitions-
    driven reader of :mod:`reko_fhir.validation.xmljson`) and validated again; this happens on
    the error path only.
    """
    name = cls.__name__
    try:
        # Imported here: validation imports this module, and only failures need the reader.
        from reko_fhir.validation.xmljson import core_reader  # noqa: PLC0415

        cls.model_validate(core_reader().resource(root))
    except ValidationError as located:
        return _validation_error(name, located)
    except (*_MODEL_FAILURES, LookupError, etree.LxmlError):
        pass
    return FormatError(f"{exc.errors()[0]['msg']} (in a {exc.title} inside the {name})")


def parse_xml(data: bytes, *, max_bytes: int = MAX_BYTES) -> Resource:
    """A resource from FHIR XML bytes, parsed safely; FormatError for anything else."""
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
    _check_xml_tree(root)
    try:
        # The parsed tree is re-serialised, not the raw input, so nothing unsafe reaches the model.
        return cls.model_validate_xml(etree.tostring(root))
    except ValidationError as exc:
        raise _xml_validation_error(root, cls, exc) from None
    except (*_MODEL_FAILURES, etree.LxmlError) as exc:
        raise FormatError(f"not a valid FHIR {qname.localname}: {exc}") from None


def parse(data: bytes, content_type: str | None = None, *, max_bytes: int = MAX_BYTES) -> Resource:
    """JSON or XML, by content type when given, else by the first non-blank byte."""
    kind = (content_type or "").split(";")[0].strip().lower()
    if "xml" in kind:
        return parse_xml(data, max_bytes=max_bytes)
    if "json" in kind:
        return parse_json(data, max_bytes=max_bytes)
    if data.lstrip()[:1] == b"<":
        return parse_xml(data, max_bytes=max_bytes)
    return parse_json(data, max_bytes=max_bytes)


def dump_json(resource: Resource) -> bytes:
    """FHIR JSON, indented, keys in element order, non-ASCII kept, newline at the end.

    ``model_dump_json(indent=2)`` gives the same bytes as ``json.dumps(model_dump(mode="json",
    by_alias=True, exclude_none=True), ensure_ascii=False, indent=2)`` (primitive extensions as
    ``_element`` included; a test pins this) with less work.
    """
    return (resource.model_dump_json(indent=2) + "\n").encode("utf-8")


def dump_xml(resource: Resource) -> bytes:
    """FHIR XML with an XML declaration, indented.

    Pretty printing only adds whitespace, which changes nothing but a narrative ``div``; the
    project writes no narrative, and a test checks that the output reads back equal.
    """
    try:
        out: str | bytes = resource.model_dump_xml(pretty_print=True)
    except ValueError as exc:  # lxml refuses control characters, which FHIR forbids as well
        raise FormatError(f"cannot be written as FHIR XML: {exc}") from None
    return out.encode("utf-8") if isinstance(out, str) else out
