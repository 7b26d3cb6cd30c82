"""Search values of a resource: the token and reference index rows written beside it.

Only the parameters the store searches on are indexed (https://hl7.org/fhir/R4/search.html):
``identifier``, ``status``, ``code`` and ``category`` as tokens; ``subject`` and ``patient``
as references (a Procedure's ``subject`` answers ``patient`` too, as in the R4 definitions).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

Json = dict[str, Any]
REFERENCE_PARAMS = {"subject": ("subject", "patient"), "patient": ("patient",)}


def _codings(value: Any) -> Iterator[tuple[str, str]]:
    items = value if isinstance(value, list) else [value]
    for item in items:
        if isinstance(item, dict):
            for coding in item.get("coding", []):
                if isinstance(coding, dict) and isinstance(coding.get("code"), str):
                    yield str(coding.get("system", "")), coding["code"]


def tokens(resource: Json) -> Iterator[tuple[str, str, str]]:
    """(param, system, value) rows."""
    for ident in (
        resource.get("identifier", []) if isinstance(resource.get("identifier"), list) else []
    ):
        if isinstance(ident, dict) and isinstance(ident.get("value"), str):
            yield "identifier", str(ident.get("system", "")), ident["value"]
    if isinstance(resource.get("status"), str):
        yield "status", "", resource["status"]
    for param in ("code", "category"):
        for system, code in _codings(resource.get(param)):
            yield param, system, code


def references(resource: Json) -> Iterator[tuple[str, str]]:
    """(param, target) rows, targets as written (``Patient/123``)."""
    for element, params in REFERENCE_PARAMS.items():
        value = resource.get(element)
        if isinstance(value, dict) and isinstance(value.get("reference"), str):
            for param in params:
                yield param, value["reference"]
