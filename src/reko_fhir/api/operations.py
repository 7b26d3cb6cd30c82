"""Routes for operators, beside the FHIR API: health, readiness, Prometheus metrics, and the
outbox's dead letters (list, show with every attempt, replay, edit-and-replay, purge).

Like the FHIR routes they only translate: the work is in :mod:`reko_fhir.delivery.admin`.
Failures answer an OperationOutcome (JSON).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import timedelta
from typing import Any

from fastapi import FastAPI, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from reko_fhir.api.auth import CHALLENGE, authenticate
from reko_fhir.api.trail import access_record, patients_in
from reko_fhir.delivery import admin, metrics
from reko_fhir.outcomes import IssueCode, OperationOutcomeError, error, outcome_json
from reko_fhir.rest.router import FhirRouter
from reko_fhir.security.audit import MOST_ENTITIES, AuditWriteError
from reko_fhir.security.scopes import ADMIN_SCOPE
from reko_fhir.security.session import forbidden
from reko_fhir.security.tokens import Principal
from reko_fhir.store import EVERY, Partitions
from reko_fhir.store.sql import SqlRepository
from reko_fhir.validation.store_rules import store_rule_issues

Json = dict[str, Any]


def _json(status: int, body: Json) -> Response:
    return Response(
        json.dumps(body, ensure_ascii=False), status_code=status, media_type="application/json"
    )


Work = Callable[[str | None], Awaitable[Json]]
"""An outbox operation, given the care unit whose messages it may touch (None: every unit's)."""


async def _answer(request: Request, work: Work, interaction: str = "read") -> Response:
    """The outbox holds patient data too: only an operator token (``reko/admin``), a unit's
    operator its own unit's messages (a platform's: all), and every answer is in the access
    log with the resources and patients it showed."""
    try:
        principal = await authenticate(request)
        if not principal.scopes.admin or principal.external_actor:
            raise forbidden(f"the outbox routes need the {ADMIN_SCOPE} scope of a care unit")
        answer = await work(None if principal.all_units else principal.care_unit)
        await _log(request, principal, answer, interaction)
        return _json(200, answer)
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


async def _log(request: Request, principal: Principal, answer: Json, interaction: str) -> None:
    """The outbox access, in the access log (a failure to log answers 500, shows nothing)."""
    shown = answer.get("messages", [answer] if "resource" in answer else [])
    entities = {"/".join(str(m["resource"]).split("/")[:2]) for m in shown if "resource" in m}
    patients = set().union(*(patients_in(m.get("payload")) for m in shown)) if shown else set()
    record = access_record(request, principal, None, 200)
    action = "R" if interaction in ("read", "search-type") else "U"
    try:
        await request.app.state.audit.record(
            replace(
                record,
                action=action,
                interaction=interaction,
                patients=tuple(sorted(patients)),
                entities=tuple(sorted(entities))[:MOST_ENTITIES],
            )
        )
    except AuditWriteError:
        message = "the access could not be written to the access log; nothing was disclosed"
        raise OperationOutcomeError(
            [error(IssueCode.EXCEPTION, message, None)], status=500
        ) from None


async def _validated(request: Request, partition: str | None, payload: Json) -> None:
    """An edited payload is checked as any write is (profiles, consent rules): 422 else."""
    router: FhirRouter = request.app.state.router
    store: SqlRepository = request.app.state.repository
    scope = Partitions.of_unit(partition) if partition else EVERY
    issues = router.validation.validate(payload) + await store_rule_issues(
        store.scoped(scope), payload
    )
    errors = [i for i in issues if i.is_error]
    if errors:
        raise OperationOutcomeError(errors, status=422)


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
            lambda unit: admin.list_messages(
                repository(request),
                status=params.get("status", "dead"),
                target=params.get("target"),
                limit=_int(params.get("_count"), "_count", 100) or 100,
                partition=unit,
            ),
            "search-type",
        )

    @app.get("/_outbox/messages/{message_id}")
    async def show(message_id: str, request: Request) -> Response:
        return await _answer(
            request,
            lambda unit: admin.show_message(
                repository(request), _int(message_id, "id") or 0, partition=unit
            ),
        )

    @app.post("/_outbox/messages/{message_id}/$replay")
    async def replay_one(message_id: str, request: Request) -> Response:
        async def work(unit: str | None) -> Json:
            edited = await _edited(request)
            number = _int(message_id, "id")

            async def check(payload: Json) -> None:
                await _validated(request, unit, payload)

            return await admin.replay(
                repository(request), message_id=number, payload=edited, partition=unit, check=check
            )

        return await _answer(request, work, "update")

    @app.post("/_outbox/$replay")
    async def replay_many(request: Request) -> Response:
        target = request.query_params.get("target")
        return await _answer(
            request,
            lambda unit: admin.replay(repository(request), target=target, partition=unit),
            "update",
        )

    @app.delete("/_outbox/messages/{message_id}")
    async def purge_one(message_id: str, request: Request) -> Response:
        return await _answer(
            request,
            lambda unit: admin.purge(
                repository(request), message_id=_int(message_id, "id"), partition=unit
            ),
            "delete",
        )

    @app.post("/_outbox/$purge")
    async def purge_many(request: Request) -> Response:
        params = request.query_params
        days = _int(params.get("olderThanDays"), "olderThanDays", 0) or 0
        return await _answer(
            request,
            lambda unit: admin.purge(
                repository(request),
                status=params.get("status", "dead"),
                older_than=timedelta(days=days),
                partition=unit,
            ),
            "delete",
        )
