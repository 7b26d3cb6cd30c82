"""Optional run-time XSD validation of RIVTA bodies against the published service contracts.

The XSDs ship inside the package (``xsd/``, the ``sklintyg/schemas`` layout, LGPL-3.0 licence
beside them; ``xsd/README.md``): :class:`RivtaSchemas` loads each interaction's
``*Responder_*.xsd`` (which imports its core components) the first time a body of that namespace
is checked. Messages are masked of patient numbers, since libxml2 quotes the
offending value.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable
from pathlib import Path
from typing import cast

from lxml import etree

from reko_fhir.domain import mask_patient_ids
from reko_fhir.package_data import RIVTA_XSD_DIR
from reko_fhir.xmlsafe import safe_parser

LIST_ACTIVE_NS = (
    "urn:riv:clinicalprocess:healthcond:rehabilitation:ListActiveSickLeavesForCareUnitResponder:1"
)
LIST_FOR_CARE_NS = "urn:riv:clinicalprocess:healthcond:certificate:ListSickLeavesForCareResponder:1"
STORE_LOG_NS = "urn:riv:informationsecurity:auditing:log:StoreLogResponder:2"

# Namespace of a body element -> its responder schema, relative to the contracts folder.
RESPONDER_XSDS = {
    LIST_ACTIVE_NS: "intyg/clinicalprocess-healthcond-rehabilitation/schemas/interactions/"
    "ListActiveSickLeavesForCareUnitInteraction/ListActiveSickLeavesForCareUnitResponder_1.0.xsd",
    LIST_FOR_CARE_NS: "rivta/clinicalprocess-healthcond-certificate/schemas/interactions/"
    "ListSickLeavesForCareInteraction/ListSickLeavesForCareResponder_1.0.xsd",
    STORE_LOG_NS: "rivta/informationsecurity-auditing-log/schemas/interactions/"
    "StoreLogInteraction/StoreLogResponder_2.0.xsd",
}
_MAX_MESSAGES = 5
_NAMESPACE = re.compile(r"\{[^{}]*\}")
# A value libxml2 quotes: "The value 'X'", "': 'X' is not", "[facet …] … 'X'" after the element.
_QUOTED_VALUE = re.compile(r"((?:[Vv]alue |': ))'[^']*'")
SCHEMA_ROOT = RIVTA_XSD_DIR


def located(entry: etree._LogEntry) -> str:
    """libxml2's message, led by the element path it is about (``/r:…/c:intygsData[2]/…``),
    namespaces left out. A value under a diagnosis element is withheld: the message must not
    carry the diagnosis it complains about (patient numbers are masked everywhere)."""
    message = _NAMESPACE.sub("", entry.message)
    if "diagnos" in (entry.path or "").lower():
        message = _QUOTED_VALUE.sub(r"\1'(withheld)'", message)
    return mask_patient_ids(f"{entry.path or f'line {entry.line}'}: {message}")


class RivtaSchemas:
    """The responder schemas under ``root`` (default: the vendored ones), loaded lazily."""

    def __init__(self, root: Path = SCHEMA_ROOT) -> None:
        if not root.is_dir():
            raise FileNotFoundError(f"no RIVTA schema folder at {root}")
        self.root = root
        self._loaded: dict[str, etree.XMLSchema] = {}

    def schema_for(self, namespace: str) -> etree.XMLSchema:
        """The compiled responder schema of ``namespace`` (KeyError when none is known)."""
        schema = self._loaded.get(namespace)
        if schema is None:
            path = self.root / RESPONDER_XSDS[namespace]
            # The schema files are local and trusted, yet read with the same safe parser.
            schema = etree.XMLSchema(etree.parse(str(path), parser=safe_parser()))
            self._loaded[namespace] = schema
        return schema

    def errors(self, body: etree._Element) -> list[str]:
        """Why ``body`` (a request or response element) breaks its contract; empty when valid."""
        namespace = etree.QName(body).namespace or ""
        if namespace not in RESPONDER_XSDS:
            return [f"no RIVTA schema is known for the namespace {namespace!r}"]
        schema = self.schema_for(namespace)
        # Validate a copy as its own document: the element may sit inside a SOAP envelope.
        document = etree.ElementTree(copy.deepcopy(body))
        if schema.validate(document):
            return []
        return [
            located(entry)
            for entry in list(cast("Iterable[etree._LogEntry]", schema.error_log))[:_MAX_MESSAGES]
        ]

    def is_valid(self, body: etree._Element) -> bool:
        return not self.errors(body)
