"""Deterministic ids, fullUrls and conditional URLs: the same record always gets the same ones.

A resource's id is a UUIDv5 of its source system, type and record id, so a resend — or the same
record exported by another tool — addresses the same resource, and the delivery layer can rely on
conditional updates for exactly-once effects. See https://hl7.org/fhir/R4/http.html#cond-update.
"""

from __future__ import annotations

import uuid
from urllib.parse import quote

from reko_fhir.domain import SourceRef

# Unreserved characters plus ':' and '/', which URIs in identifier systems are made of.
_SAFE = ":/.-_~"


def resource_uuid(system: str, resource_type: str, value: str) -> uuid.UUID:
    return uuid.uuid5(uuid.NAMESPACE_URL, f"{system}#{resource_type}/{value}")


def full_url(system: str, resource_type: str, value: str) -> str:
    return f"urn:uuid:{resource_uuid(system, resource_type, value)}"


def source_full_url(source: SourceRef, resource_type: str) -> str:
    return full_url(source.system, resource_type, source.record_id)


def conditional_url(resource_type: str, system: str, value: str) -> str:
    """``Procedure?identifier=<system>|<value>``, percent-encoded where a URL needs it."""
    return f"{resource_type}?identifier={quote(system, safe=_SAFE)}|{quote(value, safe=_SAFE)}"
