"""``GET /AuditEvent`` and ``GET /AuditEvent/{id}``: the access log, searchable, never written.

A care unit reads the log of its own accesses; a platform token reads all of it.
"""

from __future__ import annotations

from typing import Any

from reko_fhir.outcomes import IssueCode, OperationOutcomeError, error
from reko_fhir.rest.access import AccessLogReader
from reko_fhir.rest.messages import FhirRequest, FhirResponse
from reko_fhir.rest.paging import CONTROL, number, page_links
from reko_fhir.rest.searchparams import AUDIT_SEARCH
from reko_fhir.store import not_found

Json = dict[str, Any]
AUDIT_PARAMS = frozenset(AUDIT_SEARCH)


async def read_access_log(
    log: AccessLogReader, rest: list[str], request: FhirRequest
) -> FhirResponse:
    """The append-only access log: read and search (``patient``, ``date``), never written
    (https://hl7.org/fhir/R4/auditevent.html#search)."""
    if request.method.upper() != "GET" or len(rest) > 1:
        message = "the access log is append-only: AuditEvents are only read"
        raise OperationOutcomeError([error(IssueCode.NOT_SUPPORTED, message, None)], status=405)
    if rest:
        event = await log.read(rest[0])
        if event is None:
            raise not_found("AuditEvent", rest[0])
        return FhirResponse(200, event)
    unknown = sorted({k for k, _ in request.query} - {*AUDIT_PARAMS, *CONTROL})
    if unknown:
        message = f"AuditEvent is searched by patient and date, not {', '.join(unknown)}"
        raise OperationOutcomeError(
            [error(IssueCode.NOT_SUPPORTED, message, unknown[0])], status=400
        )
    count = number(request.param("_count"), 50, 1000)
    offset = number(request.param("_offset"), 0, 10**9)
    dates = [v for k, v in request.query if k == "date"]
    found, total = await log.search(
        patient=request.param("patient"), date_params=dates, count=count, offset=offset
    )
    bundle: Json = {"resourceType": "Bundle", "type": "searchset", "total": total}
    if found:
        bundle["entry"] = [
            {
                "fullUrl": f"{request.base}/AuditEvent/{e['id']}"
                if request.base
                else f"AuditEvent/{e['id']}",
                "resource": e,
                "search": {"mode": "match"},
            }
            for e in found
        ]
    bundle["link"] = page_links(
        "AuditEvent", request.query, offset, count, total, base=request.base
    )
    return FhirResponse(200, bundle)
