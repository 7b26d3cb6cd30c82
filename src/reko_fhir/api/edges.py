"""The edges of HTTP the router never sees: the base URL, over-long targets, requests the
framework answers itself (no route matched, a method not routed), rendering off the event loop.

Every answer is still an OperationOutcome in the access log with the status the client got
(https://hl7.org/fhir/R4/http.html#summary), never the framework's ``{"detail": …}``.
"""

from __future__ import annotations

import asyncio
import logging
import re

from fastapi import Request, Response
from starlette.exceptions import HTTPException

from reko_fhir.api.auth import CHALLENGE, authenticate
from reko_fhir.api.trail import record_access
from reko_fhir.config import Settings
from reko_fhir.formats import FormatError
from reko_fhir.outcomes import IssueCode, OperationOutcomeError, error, outcome_json
from reko_fhir.rest import FhirResponse
from reko_fhir.rest.negotiation import wants_xml, write_body
from reko_fhir.security.tokens import Principal

logger = logging.getLogger("reko_fhir.api")
_HOST = re.compile(r"[A-Za-z0-9.\-]{1,253}(:[0-9]{1,5})?|\[[0-9A-Fa-f:.]{2,45}\](:[0-9]{1,5})?")
_PREFIX = re.compile(r"(/[A-Za-z0-9._~\-]+)*")


def base_url(request: Request, settings: Settings) -> str:
    """The service's base as the client reached it, no trailing slash. ``X-Forwarded-Proto``,
    ``-Host`` and ``-Prefix`` count only when configured (``REKO_TRUST_FORWARDED``), and only
    when they look like a scheme, a host and a path: they end up in every link."""
    scheme, host = request.url.scheme, request.url.netloc
    prefix = request.scope.get("root_path", "")
    if settings.trust_forwarded:
        headers = request.headers
        forwarded_proto = (headers.get("x-forwarded-proto") or "").split(",")[0].strip().lower()
        forwarded_host = (headers.get("x-forwarded-host") or "").split(",")[0].strip()
        forwarded_prefix = (headers.get("x-forwarded-prefix") or "").strip().rstrip("/")
        if forwarded_proto in ("http", "https"):
            scheme = forwarded_proto
        if _HOST.fullmatch(forwarded_host):
            host = forwarded_host
        if forwarded_prefix and _PREFIX.fullmatch(forwarded_prefix):
            prefix = forwarded_prefix
    return f"{scheme}://{host}{prefix}".rstrip("/")


def check_target(request: Request, settings: Settings) -> None:
    """414 for a request target (path and query) longer than ``max_url_bytes``."""
    length = len(request.scope.get("raw_path") or b"") + len(request.scope["query_string"])
    if length > settings.max_url_bytes:
        message = f"the URL is longer than {settings.max_url_bytes} bytes"
        raise OperationOutcomeError([error(IssueCode.TOO_COSTLY, message, None)], status=414)


async def render(answer: FhirResponse, xml: bool) -> tuple[FhirResponse, bytes | None, str]:
    """The answer's body in the asked format, and the answer as the client will get it (500
    when the resource cannot be written as XML). XML is written in a worker thread: a large
    page takes seconds, and nothing else (``/healthz`` included) may wait for it."""
    if answer.resource is None:
        return answer, None, ""
    try:
        if xml:
            content, media_type = await asyncio.to_thread(write_body, answer.resource, True)
        else:
            content, media_type = write_body(answer.resource, False)
    except FormatError as failure:  # a bug of ours: the answer must still be an outcome
        logger.error("the answer could not be written as XML: %s", failure.message)
        message = "the answer could not be written in the asked format; it has been logged"
        outcome = outcome_json([error(IssueCode.EXCEPTION, message, None)])
        content, media_type = write_body(outcome, xml=False)
        return FhirResponse(500, outcome, {}), content, media_type
    return answer, content, media_type


def response(answer: FhirResponse, content: bytes | None, media_type: str) -> Response:
    if content is None:
        return Response(status_code=answer.status, headers=answer.headers)
    return Response(
        content, status_code=answer.status, headers=answer.headers, media_type=media_type
    )


async def framework_refusal(request: Request, exc: Exception) -> Response:
    """What Starlette answers itself (404: no route matched, e.g. a path with CR/LF; 405: a
    method the route does not take) as an OperationOutcome, recorded in the access log."""
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    method = request.method
    if status == 405:
        message = f"{method} is not an interaction on this path"
        issue = error(IssueCode.NOT_SUPPORTED, message, None)
    elif status == 404:
        issue = error(IssueCode.NOT_FOUND, "no FHIR interaction is at this path", None)
    else:
        issue = error(IssueCode.PROCESSING, "the request could not be answered", None)
    answer = FhirResponse(status, outcome_json([issue]))
    principal: Principal | None = None
    try:  # who asked, when they said so: the access log names them
        principal = await authenticate(request)
    except OperationOutcomeError:
        principal = None
    answer = await record_access(request, principal, answer, None)
    xml = wants_xml(request.query_params.get("_format"), request.headers.get("accept"))
    answer, content, media_type = await render(answer, xml)
    if answer.status == 401:
        answer.headers.update(CHALLENGE)
    return response(answer, content, media_type)
