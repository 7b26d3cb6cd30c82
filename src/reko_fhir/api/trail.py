"""One AuditEvent per request to the FHIR API: who, for which unit, which patients, what, how
it ended, from where (modelled on IHE BALP, https://profiles.ihe.net/ITI/BALP/).

The record is committed before the answer leaves: an access that could not be logged is not
answered with data (500, nothing disclosed).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

from fastapi import Request

from reko_fhir.domain import mask_patient_ids
from reko_fhir.outcomes import IssueCode, error, outcome_json
from reko_fhir.rest import FhirResponse
from reko_fhir.security.audit import MOST_ENTITIES, AccessRecord, AuditLog, AuditWriteError
from reko_fhir.security.tokens import Principal

Json = dict[str, Any]


def classify(method: str, path: str, body: Any = None) -> tuple[str, str]:
    """(AuditEvent.action, restful-interaction code) of a request."""
    parts = [p for p in path.strip("/").split("/") if p]
    if method == "POST":
        if not parts:
            batch = isinstance(body, dict) and body.get("type") == "batch"
            return "E", "batch" if batch else "transaction"
        return ("E", "operation") if parts[-1].startswith("$") else ("C", "create")
    if method == "PUT":
        return "U", "update"
    if method == "DELETE":
        return "D", "delete"
    if len(parts) <= 1:
        return "R", "search-type"
    if parts[-1].startswith("$"):
        return "E", "operation"
    if parts[1] == "_history":
        return "R", "history-type"
    return "R", {2: "read", 3: "history-instance"}.get(len(parts), "vread")


def patients_in(resource: Any) -> set[str]:
    """``Patient/…`` the resource is (about); a Bundle's entries too."""
    found: set[str] = set()
    if not isinstance(resource, dict):
        return found
    kind = resource.get("resourceType")
    if kind == "Patient" and isinstance(resource.get("id"), str):
        found.add(f"Patient/{resource['id']}")
    for element in ("subject", "patient", "for"):  # "for": a Task (the worklist)
        ref = (
            (resource.get(element) or {}).get("reference")
            if isinstance(resource.get(element), dict)
            else None
        )
        if isinstance(ref, str) and ref.startswith("Patient/") and ref.count("/") == 1:
            found.add(ref)
    if kind == "Bundle":
        for entry in resource.get("entry") or []:
            if isinstance(entry, dict):
                found |= patients_in(entry.get("resource"))
    return found


def entities_in(resource: Any) -> list[str]:
    if not isinstance(resource, dict):
        return []
    kind = resource.get("resourceType")
    if kind == "Bundle":
        return [
            e for entry in resource.get("entry") or [] for e in entities_in(entry.get("resource"))
        ]
    if kind in (None, "OperationOutcome", "Patient") or not isinstance(resource.get("id"), str):
        return []
    return [f"{kind}/{resource['id']}"]


def _entity_of(path: str) -> set[str]:
    """The resource an instance interaction names (``Procedure/9``), but a Patient (a patient
    of the event, not an entity)."""
    parts = _instance(path)
    if len(parts) > 1 and parts[0] not in ("Patient", "AuditEvent") and parts[0][:1].isupper():
        return {f"{parts[0]}/{parts[1]}"}
    return set()


def _instance(path: str) -> list[str]:
    """The path's parts; a type's ``_history`` or ``$operation`` names no resource."""
    parts = [p for p in path.strip("/").split("/") if p]
    return parts[:1] if len(parts) > 1 and parts[1][:1] in ("_", "$") else parts


def _from_request(path: str, query: tuple[tuple[str, str], ...]) -> set[str]:
    parts = _instance(path)
    found = {f"Patient/{parts[1]}"} if len(parts) > 1 and parts[0] == "Patient" else set()
    for name, value in query:
        if (
            name in ("patient", "subject")
            and value.startswith("Patient/")
            and value.count("/") == 1
        ):
            found.add(value)
    return found


def _named_in_bundle(body: Any) -> set[str]:
    """``Type/id`` a transaction or batch names in its entries' request URLs (a delete or an
    update by id names its resource though it carries none)."""
    if not isinstance(body, dict) or body.get("resourceType") != "Bundle":
        return set()
    found = set()
    for entry in body.get("entry") or []:
        request = entry.get("request") if isinstance(entry, dict) else None
        url = str(request.get("url") or "") if isinstance(request, dict) else ""
        parts = url.strip("/").split("?")[0].split("/")
        if "?" not in url and len(parts) == 2 and parts[0][:1].isupper():
            found.add("/".join(parts))
    return found


def _located_in(answer: Any) -> list[str]:
    """``Type/id`` of each entry of a transaction or batch response (what it wrote or matched)."""
    if not isinstance(answer, dict) or answer.get("type") not in (
        "transaction-response",
        "batch-response",
    ):
        return []
    found = []
    for entry in answer.get("entry") or []:
        location = str((entry.get("response") or {}).get("location") or "")
        if location.count("/") >= 1:
            found.append("/".join(location.split("/")[:2]))
    return found


def access_record(
    request: Request, principal: Principal | None, body: Json | None, status: int
) -> AccessRecord:
    """The request's access-log record with the patients and resources the request names (its
    path, query and body); what the answer shows is added by :func:`record_access`."""
    action, interaction = classify(request.method, request.url.path, body)
    path, query = request.url.path, tuple(request.query_params.multi_items())
    named = _named_in_bundle(body)
    patients = _from_request(path, query) | patients_in(body)
    patients |= {r for r in named if r.startswith("Patient/")}
    entities = _entity_of(path) | {r for r in named if not r.startswith("Patient/")}
    return AccessRecord(
        action=action,
        interaction=interaction,
        outcome=status,
        agent=principal.subject[:128] if principal else "unauthenticated",
        unit=principal.on_behalf_of if principal else None,
        client_id=principal.client_id if principal else None,
        source_address=request.client.host if request.client else None,
        patients=tuple(sorted(p for p in patients if len(p) <= 128)),
        entities=tuple(sorted(entities)[:MOST_ENTITIES]),
        query=mask_patient_ids(unquote(request.url.query)) if request.url.query else None,
        recorded=datetime.now(UTC),
    )


async def record_access(
    request: Request,
    principal: Principal | None,
    answer: FhirResponse,
    body: Json | None,
) -> FhirResponse:
    """Log the access; the answer itself, or a 500 when the log could not be written."""
    audit: AuditLog = request.app.state.audit
    named = access_record(request, principal, body, answer.status)
    located = set(_located_in(answer.resource))
    patients = set(named.patients) | patients_in(answer.resource)
    patients |= {r for r in located if r.startswith("Patient/")}
    entities = set(named.entities) | set(entities_in(answer.resource))
    entities |= {r for r in located if not r.startswith(("Patient/", "Provenance/"))}
    record = named
    try:
        await audit.record(
            replace(
                record,
                patients=tuple(sorted(p for p in patients if len(p) <= 128)),
                entities=tuple(sorted(entities)[:MOST_ENTITIES]),
            )
        )
    except AuditWriteError:
        message = "the access could not be written to the access log; nothing was disclosed"
        return FhirResponse(500, outcome_json([error(IssueCode.EXCEPTION, message, None)]))
    return answer
