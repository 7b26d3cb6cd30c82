"""The CapabilityStatement: exactly what this server implements, no more.

https://hl7.org/fhir/R4/capabilitystatement.html
"""

from __future__ import annotations

from typing import Any

from reko_fhir import __version__
from reko_fhir.mapping.codings import structure
from reko_fhir.rest.searchparams import (
    AUDIT_INTERACTIONS,
    AUDIT_SEARCH,
    MEASURE_INTERACTIONS,
    MEASURE_OPERATIONS,
    OPERATIONS,
    RESOURCE_TYPES,
    RESULT_PARAMS,
    SYSTEM_INTERACTIONS,
    WRITABLE,
    chains,
    includes_of,
    interactions,
    operations,
    search_parameters,
    sort_keys,
)

__all__ = ["RESOURCE_TYPES", "WRITABLE", "capability_statement"]
Json = dict[str, Any]
_RESULT_DOCS = {
    "_count": "Matches per page (0-1000; 0: the total only)",
    "_offset": "Where the page starts",
    "_total": "none, estimate (default: counted up to 1,000) or accurate",
    "_summary": "count only (true, false, text and data answer the full resources)",
}


def _search_params(kind: str) -> list[Json]:
    params: list[Json] = []
    for name, type_ in search_parameters(kind).items():
        param: Json = {"name": name, "type": type_}
        chained = [c for c in chains(kind) if c.startswith(f"{name}.")]
        if chained:
            param["documentation"] = f"Also chained: {', '.join(chained)}"
        params.append(param)
    for name, type_ in RESULT_PARAMS.items():
        if name == "_include":
            continue  # searchInclude says which
        docs = _RESULT_DOCS.get(name) or f"Sort on {', '.join(sort_keys(kind))} ('-': descending)"
        params.append({"name": name, "type": type_, "documentation": docs})
    return params


def _resource(kind: str) -> Json:
    """One type's entry, from the tables the router serves (:mod:`.searchparams`)."""
    writable = kind in WRITABLE
    entry: Json = {"type": kind}
    if writable:
        entry["supportedProfile"] = [structure(f"Reko{kind}")]
    entry["interaction"] = [{"code": code} for code in interactions(kind)]
    entry["versioning"] = "versioned-update"
    entry["readHistory"] = True
    entry["updateCreate"] = False  # an update of an unknown id is 404
    entry["conditionalCreate"] = writable
    entry["conditionalUpdate"] = writable
    entry["conditionalDelete"] = "not-supported"
    entry["searchParam"] = _search_params(kind)
    if includes_of(kind):
        entry["searchInclude"] = includes_of(kind)
    if operations(kind):
        entry["operation"] = [
            {"name": name, "definition": OPERATIONS[name]} for name in operations(kind)
        ]
    return entry


def capability_statement(base: str = "") -> Json:
    """The statement; ``base`` (the service's base URL) is its ``implementation.url``."""
    resources = [_resource(kind) for kind in sorted(RESOURCE_TYPES)]
    resources.append(
        {
            "type": "AuditEvent",
            "interaction": [{"code": code} for code in AUDIT_INTERACTIONS],
            "searchParam": [
                *({"name": n, "type": t} for n, t in AUDIT_SEARCH.items()),
                *(
                    {"name": n, "type": "number", "documentation": _RESULT_DOCS[n]}
                    for n in ("_count", "_offset")
                ),
            ],
        }
    )
    resources.append(
        {
            "type": "Measure",
            "interaction": [{"code": code} for code in MEASURE_INTERACTIONS],
            "operation": [
                {"name": name, "definition": url} for name, url in MEASURE_OPERATIONS.items()
            ],
        }
    )
    security = {
        "cors": False,
        "service": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                        "code": "SMART-on-FHIR",
                    }
                ]
            }
        ],
        "description": (
            "Bearer JWTs (RS256/ES256) with SMART v2 scopes and a care_unit (HSA-id) or "
            "external_actor claim; a care unit sees only what it holds; every access is an "
            "AuditEvent."
        ),
    }
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": "2026-11-22",
        "kind": "instance",
        "software": {"name": "reko-fhir", "version": __version__},
        "implementation": {
            "description": "reko-fhir: koordineringsinsatser as FHIR R4",
            **({"url": base} if base else {}),
        },
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+json", "application/fhir+xml"],
        "rest": [
            {
                "mode": "server",
                "security": security,
                "resource": resources,
                "interaction": [{"code": code} for code in SYSTEM_INTERACTIONS],
            }
        ],
    }
