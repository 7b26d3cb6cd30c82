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

from fastapi import FastAPI, Request, Response

from reko_fhir.api.operations import add_operations_routes
from reko_fhir.config import Settings
from reko_fhir.delivery.config import load_targets
from reko_fhir.delivery.service import DeliveryService
from reko_fhir.delivery.worker import Target
from reko_fhir.domain import mask_patient_ids
from reko_fhir.formats import MAX_BYTES
from reko_fhir.outcomes import IssueCode, OperationOutcomeError, error, outcome_json
from reko_fhir.rest import FhirRequest, FhirResponse, FhirRouter
from reko_fhir.rest.negotiation import read_body, wants_xml, write_body
from reko_fhir.store import SqlRepository
from reko_fhir.validation.service import ValidationService, reko_definitions

METHODS = ["GET", "POST", "PUT", "DELETE"]
logger = logging.getLogger("reko_fhir.api")
access = logging.getLogger("reko_fhir.access")


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if not settings.database_url:
            settings.data_dir.mkdir(parents=True, exist_ok=True)
        configs = load_targets(settings.targets_file, settings.targets)
        repository = await SqlRepository.open(
            settings.sqlalchemy_url(), subscriptions=[c.subscription() for c in configs]
        )
        app.state.router = FhirRouter(repository, ValidationService(reko_definitions()))
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
        try:
            yield
        finally:
            await delivery.stop()
            await repository.close()

    app = FastAPI(
        title="reko-fhir", version="0.1.0", lifespan=lifespan, docs_url=None, redoc_url=None
    )

    @app.middleware("http")
    async def access_log(request: Request, call_next: Any) -> Response:
        """One line per request; patient numbers in paths and queries are masked."""
        started = time.perf_counter()
        response: Response = await call_next(request)
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        elapsed = (time.perf_counter() - started) * 1000
        access.info(
            "%s %s %d %.1f ms",
            request.method,
            mask_patient_ids(target),
            response.status_code,
            elapsed,
        )
        return response

    add_operations_routes(app)

    @app.api_route("/{path:path}", methods=METHODS)
    async def fhir(path: str, request: Request) -> Response:
        query = tuple(request.query_params.multi_items())
        xml = wants_xml(request.query_params.get("_format"), request.headers.get("accept"))
        router: FhirRouter = request.app.state.router
        try:
            declared = int(request.headers.get("content-length") or 0)
            if declared > MAX_BYTES:
                message = f"the body is larger than {MAX_BYTES} bytes"
                raise OperationOutcomeError(
                    [error(IssueCode.TOO_COSTLY, message, None)], status=413
                )
            raw = await request.body()
            body = (
                read_body(raw, request.headers.get("content-type"))
                if raw or request.method in ("POST", "PUT")
                else None
            )
            headers = {k.lower(): v for k, v in request.headers.items()}
            answer = await router.handle(
                FhirRequest(request.method, path, query, headers, raw), body
            )
        except OperationOutcomeError as failure:
            answer = FhirResponse(failure.status, outcome_json(failure.issues))
        except Exception:  # a bug of ours: logged with its traceback, answered without one
            where = mask_patient_ids(request.url.path)
            logger.exception("unexpected failure answering %s %s", request.method, where)
            message = "the server failed to answer this request; it has been logged"
            answer = FhirResponse(500, outcome_json([error(IssueCode.EXCEPTION, message, None)]))
        return to_http(answer, xml)

    return app


def to_http(answer: FhirResponse, xml: bool) -> Response:
    if answer.resource is None:
        return Response(status_code=answer.status, headers=answer.headers)
    content, media_type = write_body(answer.resource, xml)
    return Response(
        content, status_code=answer.status, headers=answer.headers, media_type=media_type
    )
