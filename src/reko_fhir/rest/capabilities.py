"""The CapabilityStatement: exactly what this server implements, no more.

https://hl7.org/fhir/R4/capabilitystatement.html
"""

from __future__ import annotations

from typing import Any

from reko_fhir import __version__
from reko_fhir.mapping.codings import structure
from reko_fhir.rest.paging import includes_of
from reko_fhir.store import DATE_PARAMS

WRITABLE = (
    "Patient",
    "Organization",
    "PractitionerRole",
    "Consent",
    "EpisodeOfCare",
    "CarePlan",
    "Procedure",
    "CareTeam",
    "Communication",
)
RESOURCE_TYPES = frozenset({*WRITABLE, "Provenance"})
SEARCH = {
    "_id": "token",
    "identifier": "token",
    "status": "token",
    "code": "token",
    "category": "token",
    "subject": "reference",
    "patient": "reference",
}


def search_parameters(kind: str) -> list[tuple[str, str]]:
    """(name, type) of the parameters a search of ``kind`` takes: the common ones, the dates
    the store indexes for the type, and ``_lastUpdated``. Chains (``patient.identifier``) and
    result parameters (``_count``, ``_offset``, ``_sort``, ``_include``, ``_summary=count``,
    ``_total``) are not search parameters in this sense."""
    dates = sorted({param for param, _ in DATE_PARAMS.get(kind, ())})
    return [*SEARCH.items(), *((name, "date") for name in dates), ("_lastUpdated", "date")]


INTERACTIONS = (
    "read",
    "vread",
    "update",
    "delete",
    "history-instance",
    "history-type",
    "create",
    "search-type",
)


def capability_statement() -> dict[str, Any]:
    resources = []
    for kind in sorted(RESOURCE_TYPES):
        allowed = INTERACTIONS if kind in WRITABLE else ("read", "vread", "search-type")
        resources.append(
            {
                "type": kind,
                **({"supportedProfile": [structure(f"Reko{kind}")]} if kind in WRITABLE else {}),
                "interaction": [{"code": code} for code in allowed],
                "versioning": "versioned-update",
                "readHistory": True,
                "updateCreate": True,
                "conditionalCreate": kind in WRITABLE,
                "conditionalUpdate": kind in WRITABLE,
                "conditionalDelete": "not-supported",
                "searchParam": [
                    {"name": name, "type": type_} for name, type_ in search_parameters(kind)
                ],
                "searchInclude": includes_of(kind),
                "operation": [
                    {
                        "name": "validate",
                        "definition": "http://hl7.org/fhir/OperationDefinition/Resource-validate",
                    }
                ],
            }
        )
    resources.append(
        {
            "type": "AuditEvent",
            "interaction": [{"code": "read"}, {"code": "search-type"}],
            "searchParam": [
                {"name": "patient", "type": "reference"},
                {"name": "date", "type": "date"},
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
        "implementation": {"description": "reko-fhir: koordineringsinsatser as FHIR R4"},
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+json", "application/fhir+xml"],
        "rest": [{"mode": "server", "security": security, "resource": resources}],
    }
