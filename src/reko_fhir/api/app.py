"""``create_app(settings)``: the FastAPI application around :class:`~reko_fhir.rest.FhirRouter`.

The routes translate HTTP to a FhirRequest and the FhirResponse back, in the negotiated format;
they decide nothing about FHIR. The store opens (and migrates) when the app starts.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any
from urllib.parse import unquote

from fastapi import FastAPI, Request, Response
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from reko_fhir.api.auth import CHALLENGE, authenticate, build_verifier
from reko_fhir.api.edges import base_url, check_target, framework_refusal, render, response
from reko_fhir.api.openapi import openapi_document
from reko_fhir.api.operations import add_operations_routes
from reko_fhir.api.trail import access_record, record_access
from reko_fhir.config import Settings
from reko_fhir.delivery.config import load_targets
from reko_fhir.delivery.service import DeliveryService
from reko_fhir.delivery.worker import Target
from reko_fhir.domain import mask_patient_ids
from reko_fhir.outcomes import IssueCode, OperationOutcomeError, error, outcome_json
from reko_fhir.rest import FhirRequest, FhirResponse, FhirRouter
from reko_fhir.rest.negotiation import read_body, wants_xml
from reko_fhir.security.access_log import UnitAccessLog
from reko_fhir.security.audit import AuditLog
from reko_fhir.security.guard import Caller, GuardedRepository, ScopeCheck, writes_for
from reko_fhir.security.tokens import Principal
from reko_fhir.sick_leave_feed import schedule_for
from reko_fhir.store import SqlRepository
from reko_fhir.validation.service import ValidationService, reko_definitions

# Every method reaches the router, which answers what it does not serve with a 405 outcome.
METHODS = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"]
CARE_UNIT_HEADER = "x-reko-care-unit"
"""The care unit a platform token's write is for (its partition)."""
Json = dict[str, Any]
logger = logging.getLogger("reko_fhir.api")
access = logging.getLogger("reko_fhir.access")


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    app = FastAPI(
        title="reko-fhir",
        version="0.1.0",
        lifespan=lambda app: _running(app, settings),
        docs_url=None,
        redoc_url=None,
    )
    # The FHIR interactions as they are routed, not FastAPI's single catch-all route.
    app.openapi = openapi_document  # type: ignore[method-assign]

    app.add_middleware(RequestLog)
    app.add_exception_handler(HTTPException, framework_refusal)
    add_operations_routes(app)

    @app.api_route("/{path:path}", methods=METHODS)
    async def fhir(path: str, request: Request) -> Response:
        query = tuple(request.query_params.multi_items())
        xml = wants_xml(request.query_params.get("_format"), request.headers.get("accept"))
        router: FhirRouter = request.app.state.router
        public = request.method == "GET" and path.strip("/") == "metadata"
        principal: Principal | None = None
        guarded: GuardedRepository | None = None
        body: Json | None = None
        try:
            # Who is asking comes first: nothing of a stranger's body is read or parsed.
            check_target(request, settings)
            if not public:
                principal = await authenticate(request)
            raw = await read_limited(request, settings.max_body_bytes)
            body = (
                read_body(raw, request.headers.get("content-type"))
                if raw or request.method in ("POST", "PUT")
                else None
            )
            headers = {k.lower(): v for k, v in request.headers.items()}
            fhir_request = FhirRequest(
                request.method, path, query, headers, raw, base_url(request, settings)
            )
            if principal is None:  # /metadata: nothing of the store is read
                answer = await router.handle(fhir_request, body, body_checked=True)
            else:
                # The store as this caller may see it: no handler holds more than this.
                store: SqlRepository = request.app.state.repository
                partitions = writes_for(principal, headers.get(CARE_UNIT_HEADER))
                record = access_record(request, principal, body, 200)
                guarded = GuardedRepository(
                    store.scoped(partitions), Caller(principal, record, partitions)
                )
                scopes = ScopeCheck(principal)
                answer = await router.handle(
                    fhir_request,
                    body,
                    repository=guarded,
                    permissions=scopes,
                    access_log=UnitAccessLog(store, scopes.audit_unit()),
                    body_checked=True,  # read_body checked it
                )
        except OperationOutcomeError as failure:
            challenge = CHALLENGE if failure.status == 401 else {}
            answer = FhirResponse(failure.status, outcome_json(failure.issues), dict(challenge))
        except Exception:  # a bug of ours: logged with its traceback, answered without one
            where = mask_patient_ids(request.url.path)
            logger.exception("unexpected failure answering %s %s", request.method, where)
            message = "the server failed to answer this request; it has been logged"
            answer = FhirResponse(500, outcome_json([error(IssueCode.EXCEPTION, message, None)]))
        # Rendered before it is logged: the access log holds the status the client gets.
        answer, content, media_type = await render(answer, xml)
        if not public and not (guarded and guarded.audited and answer.status < 400):
            # A write's record was committed with it; everything else is logged here.
            logged = await record_access(request, principal, answer, body)
            if logged is not answer:  # the log failed: nothing is disclosed
                answer, content, media_type = await render(logged, xml)
        return response(answer, content, media_type)

    return app


@asynccontextmanager
async def _running(app: FastAPI, settings: Settings) -> AsyncIterator[None]:
    """Open (and migrate) the store, check tokens, log accesses, run the delivery workers."""
    # First, before the store opens: without the reko profiles nothing may start.
    validation = ValidationService(reko_definitions())
    if not settings.database_url:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    configs = load_targets(settings.targets_file, settings.targets)
    repository = await SqlRepository.open(
        settings.sqlalchemy_url(), subscriptions=[c.subscription() for c in configs]
    )
    app.state.verifier = build_verifier(settings)
    app.state.audit = AuditLog(
        repository.transaction,
        subscriptions=repository.subscriptions,
        statement=repository.statement,
    )
    app.state.router = FhirRouter(repository, validation)
    app.state.repository = repository
    targets: dict[str, Target] = {}
    if configs:  # the HTTP clients and their keys are only built for configured targets
        from reko_fhir.delivery.targets import build_targets  # noqa: PLC0415

        targets = build_targets(configs)
    delivery = DeliveryService(
        repository,
        targets,
        workers=settings.workers,
        batch=settings.worker_batch,
        lease=timedelta(seconds=settings.worker_lease_seconds),
        delivered_retention=timedelta(days=settings.delivered_retention_days),
        dead_retention=timedelta(days=settings.dead_retention_days),
    )
    delivery.start()
    feed = schedule_for(repository, settings, "serve")  # the national file's sick-leave import
    if feed is not None:
        feed.start()
    try:
        yield
    finally:
        if feed is not None:
            await feed.stop()
        await delivery.stop()
        await app.state.audit.close()
        await repository.close()


class RequestLog:
    """One line per request; patient numbers in paths and queries are masked.

    Plain ASGI rather than ``@app.middleware("http")``: Starlette's BaseHTTPMiddleware runs
    the route in a task of its own and streams the answer through a memory channel, which
    cost every request more than the line it logs."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client sees if the app fails before answering

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            query = scope.get("query_string", b"").decode("latin-1")
            target = scope["path"] + (f"?{query}" if query else "")
            shown = mask_patient_ids(unquote(target))  # %-escaped digits are digits too
            if len(shown) > 2048:  # masked first, so the cut cannot free a number's digits
                shown = shown[:2048] + "…"
            access.info(
                "%s %s %d %.1f ms",
                scope["method"],
                shown,
                status,
                (time.perf_counter() - started) * 1000,
            )


async def read_limited(request: Request, limit: int) -> bytes:
    """The body, refused with 413 as soon as it passes ``limit`` (chunked bodies declare no
    length, so the count is kept while reading, not trusted from a header)."""
    too_large = OperationOutcomeError(
        [error(IssueCode.TOO_COSTLY, f"the body is larger than {limit} bytes", None)], status=413
    )
    declared = request.headers.get("content-length") or "0"
    if not declared.isdigit():
        message = "Content-Length is not a number"
        raise OperationOutcomeError([error(IssueCode.STRUCTURE, message, None)], status=400)
    if int(declared) > limit:
        raise too_large
    chunks, size = [], 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise too_large
            chunks.append(chunk)
    except ClientDisconnect:
        # The client's doing, not a failure of ours: one line, no traceback.
        logger.info(
            "client aborted %s %s mid-body", request.method, mask_patient_ids(request.url.path)
        )
        message = "the client closed the connection before the body ended"
        raise OperationOutcomeError(
            [error(IssueCode.STRUCTURE, message, None)], status=400
        ) from None
    return b"".join(chunks)
