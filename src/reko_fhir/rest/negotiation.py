"""Formats in and out: FHIR JSON or XML by ``_format``, ``Accept`` and ``Content-Type``.

https://hl7.org/fhir/R4/http.html#mime-type. Bodies are read without typed models (so an
invalid resource reaches validation and gets its issues), and written through fhir.resources.
"""

from __future__ import annotations

import json
from typing import Any

from lxml import etree

from reko_fhir.formats import MAX_BYTES, MAX_JSON_DEPTH, dump_xml, json_depth, parse_json_object
from reko_fhir.outcomes import IssueCode, OperationOutcomeError, error
from reko_fhir.validation.xmljson import core_reader
from reko_fhir.xmlsafe import UnsafeXmlError

JSON_TYPE = "application/fhir+json"
XML_TYPE = "application/fhir+xml"
Json = dict[str, Any]


def wants_xml(format_param: str | None, accept: str | None) -> bool:
    chosen = (format_param or accept or "").lower()
    return "xml" in chosen and "json" not in chosen.split(",")[0]


def read_body(body: bytes, content_type: str | None) -> Json:
    """The request's resource as FHIR JSON; 400/413/415 OperationOutcomes for bad bodies."""
    if len(body) > MAX_BYTES:
        raise _bad(IssueCode.TOO_COSTLY, f"the body is larger than {MAX_BYTES} bytes", 413)
    kind = (content_type or "").split(";")[0].strip().lower()
    if kind and not any(t in kind for t in ("json", "xml")):
        raise _bad(IssueCode.NOT_SUPPORTED, f"'{kind}' is not FHIR JSON or XML", 415)
    if not body.strip():
        raise _bad(IssueCode.STRUCTURE, "the request has no body", 400)
    try:
        if "xml" in kind or (not kind and body.lstrip()[:1] == b"<"):
            doc: Any = core_reader().read(body)
        else:
            doc = json.loads(body.decode("utf-8-sig"))
    except (UnicodeDecodeError, RecursionError):
        raise _bad(IssueCode.STRUCTURE, "the body is not UTF-8 FHIR", 400) from None
    except json.JSONDecodeError as exc:
        raise _bad(IssueCode.STRUCTURE, f"not JSON: {exc.msg} at line {exc.lineno}", 400) from None
    except (UnsafeXmlError, etree.XMLSyntaxError) as exc:
        raise _bad(IssueCode.STRUCTURE, f"not acceptable XML: {exc}", 400) from None
    if not isinstance(doc, dict) or not isinstance(doc.get("resourceType"), str):
        raise _bad(IssueCode.STRUCTURE, "a FHIR resource has a resourceType", 400)
    if json_depth(doc) > MAX_JSON_DEPTH:
        raise _bad(IssueCode.STRUCTURE, f"nested deeper than {MAX_JSON_DEPTH} levels", 400)
    return doc


def write_body(resource: Json, xml: bool) -> tuple[bytes, str]:
    if not xml:
        return json.dumps(resource, ensure_ascii=False).encode("utf-8"), JSON_TYPE
    return dump_xml(parse_json_object(resource)), XML_TYPE


def _bad(code: IssueCode, message: str, status: int) -> OperationOutcomeError:
    return OperationOutcomeError([error(code, message, None)], status=status)
