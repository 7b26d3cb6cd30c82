"""Routes for operators, beside the FHIR API: health, readiness, Prometheus metrics, and the
outbox's dead letters (list, show with every attempt, replay, edit-and-replay, purge).

Like the FHIR routes they only translate: the work is in :mod:`reko_fhir.delivery.admin`.
Failures answer an OperationOutcome (JSON).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from fastapi import FastAPI, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from reko_fhir.api.auth import CHALLENGE, authenticate
from reko_fhir.delivery import admin, metrics
from reko_fhir.outcomes import IssueCode, OperationOutcomeError, error, outcome_json
from reko_fhir.security.access import forbidden
from reko_fhir.security.scopes import ADMIN_SCOPE
from reko_fhir.store.sql import SqlRepository

Json = dict[str, Any]


def _json(status: int, body: Json) -> Response:
    return Response(
        json.dumps(body, ensure_ascii=False), status_code=status, media_type="application/json"
    )


async def _answer(request: Request, work: Callable[[], Awaitable[Json]]) -> Response:
    """Dead letters hold payloads of every care unit: only an operator token (``reko/admin``)."""
    try:
        principal = await authenticate(request)
        if not principal.scopes.admin:
            raise forbidden(f"the outbox routes need the {ADMIN_SCOPE} scope")
        return _json(200, await work())
    except OperationOutcomeError as failure:
        return Response(
            json.dumps(outcome_json(failure.issues), ensure_ascii=False),
            status_code=failure.status,
            media_type="application/fhir+json",
            headers=CHALLENGE if failure.status == 401 else None,
        )


def _int(value: str | None, name: str, default: int | None = None) -> int | None:
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        message = f"{name} is a whole number, not '{value[:40]}'"
        raise OperationOutcomeError([error(IssueCode.VALUE, message, name)], status=400) from None


async def _edited(request: Request) -> Json | None:
    raw = await request.body()
    if not raw:
        return None
    try:
        body = json.loads(raw)
    except ValueError:
        message = "the edited resource is not JSON"
        raise OperationOutcomeError(
            [error(IssueCode.STRUCTURE, message, None)], status=400
        ) from None
    if not isinstance(body, dict):
        message = "the edited resource is a JSON object"
        raise OperationOutcomeError([error(IssueCode.STRUCTURE, message, None)], status=400)
    return body


def add_operations_routes(app: FastAPI) -> None:
    def repository(request: Request) -> SqlRepository:
        repo: SqlRepository = request.app.state.repository
        return repo

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> Response:
        return _json(200, {"status": "alive"})

    @app.get("/readyz", include_in_schema=False)
    async def readyz(request: Request) -> Response:
        try:
            async with repository(request).transaction(writer=False) as conn:
                await conn.execute(text("SELECT 1"))
        except Exception:  # not ready is an answer, not a failure
            return _json(503, {"status": "the store does not answer"})
        return _json(200, {"status": "ready"})

    @app.get("/metrics", include_in_schema=False)
    async def prometheus(request: Request) -> Response:
        await metrics.refresh_queue(repository(request))
        return Response(generate_latest(metrics.REGISTRY), media_type=CONTENT_TYPE_LATEST)

    @app.get("/_outbox/messages")
    async def list_messages(request: Request) -> Response:
        params = request.query_params
        return await _answer(
            request,
            lambda: admin.list_messages(
                repository(request),
                status=params.get("status", "dead"),
                target=params.get("target"),
                limit=_int(params.get("_count"), "_count", 100) or 100,
            ),
        )

    @app.get("/_outbox/messages/{message_id}")
    async def show(message_id: str, request: Request) -> Response:
        return await _answer(
            request, lambda: admin.show_message(repository(request), _int(message_id, "id") or 0)
        )

    @app.post("/_outbox/messages/{message_id}/$replay")
    async def replay_one(message_id: str, request: Request) -> Response:
        async def work() -> Json:
            edited = await _edited(request)
            number = _int(message_id, "id")
            return await admin.replay(repository(request), message_id=number, payload=edited)

        return await _answer(request, work)

    @app.post("/_outbox/$replay")
    async def replay_many(request: Request) -> Response:
        target = request.query_params.get("target")
        return await _answer(request, lambda: admin.replay(repository(request), target=target))

    @app.delete("/_outbox/messages/{message_id}")
    async def purge_one(message_id: str, request: Request) -> Response:
        return await _answer(
            request, lambda: admin.purge(repository(request), message_id=_int(message_id, "id"))
        )

    @app.post("/_outbox/$purge")
    async def purge_many(request: Request) -> Response:
        params = request.query_params
        days = _int(params.get("olderThanDays"), "olderThanDays", 0) or 0
        return await _answer(
            request,
            lambda: admin.purge(
                repository(request),
                status=params.get("status", "dead"),
                older_than=timedelta(days=days),
            ),
        )
