"""Dead letters and the queue, for people: list, show, replay (one, by target, all), edit and
replay, purge. The API routes and ``reko-fhir outbox`` both call these; they answer JSON."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from reko_fhir.outcomes import IssueCode, OperationOutcomeError, error
from reko_fhir.store import outbox_admin
from reko_fhir.store.outbox import Attempt, Message
from reko_fhir.store.sql import SqlRepository

Json = dict[str, Any]
STATUSES = ("pending", "delivered", "dead")


def _instant(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds") if moment else None


def message_json(message: Message, attempts: list[Attempt] | None = None) -> Json:
    shown: Json = {
        "id": message.id,
        "target": message.target,
        "status": message.status,
        "resource": f"{message.resource_type}/{message.resource_id}/_history/{message.version}",
        "operation": message.operation,
        "orderingKey": message.ordering_key,
        "attempts": message.attempts,
        "created": _instant(message.created_at),
        "nextAttempt": _instant(message.next_attempt_at) if message.status == "pending" else None,
        "deadReason": message.dead_reason,
        "lastError": message.last_error,
    }
    if attempts is not None:
        shown["attemptLog"] = [
            {
                "number": a.number,
                "at": _instant(a.at),
                "result": a.result,
                "status": a.status,
                "reason": a.reason,
            }
            for a in attempts
        ]
        shown["payload"] = message.payload
    return shown


def _status(status: str | None) -> str | None:
    if status in (None, "all"):
        return None
    if status not in STATUSES:
        message = f"status is all or one of {', '.join(STATUSES)}, not '{status}'"
        raise OperationOutcomeError([error(IssueCode.VALUE, message, "status")], status=400)
    return status


async def list_messages(
    repository: SqlRepository,
    *,
    status: str | None = "dead",
    target: str | None = None,
    limit: int = 100,
    partition: str | None = None,
) -> Json:
    """The queue's messages; ``partition``: only those of one care unit's resources."""
    async with repository.transaction(writer=False) as conn:
        found = await outbox_admin.messages(
            conn,
            status=_status(status),
            target=target,
            limit=min(max(limit, 1), 1000),
            partition=partition,
        )
    return {"messages": [message_json(m) for m in found]}


async def show_message(
    repository: SqlRepository, message_id: int, *, partition: str | None = None
) -> Json:
    async with repository.transaction(writer=False) as conn:
        found = await outbox_admin.message(conn, message_id, partition=partition)
    if found is None:
        text = f"outbox message {message_id} is not known"
        raise OperationOutcomeError([error(IssueCode.NOT_FOUND, text, None)], status=404)
    return message_json(*found)


async def replay(
    repository: SqlRepository,
    *,
    message_id: int | None = None,
    target: str | None = None,
    payload: Json | None = None,
    partition: str | None = None,
    check: Callable[[Json], Awaitable[None]] | None = None,
) -> Json:
    """Dead letters back into the queue; ``payload`` replaces one message's resource first,
    after ``check`` (validation as for any write) let it through."""
    if payload is not None:
        if message_id is None:
            text = "an edited resource replays one message: name it"
            raise OperationOutcomeError([error(IssueCode.REQUIRED, text, None)], status=400)
        shown = await show_message(repository, message_id, partition=partition)
        kind = shown["resource"].split("/", 1)[0]
        if payload.get("resourceType") != kind:
            text = f"the edited resource must be a {kind}"
            raise OperationOutcomeError(
                [error(IssueCode.INVALID, text, "resourceType")], status=400
            )
        if check is not None:
            await check(payload)
    async with repository.transaction() as conn:
        count = await outbox_admin.replay(
            conn, message_id=message_id, target=target, payload=payload, partition=partition
        )
    if message_id is not None and count == 0:
        text = f"outbox message {message_id} is not a dead letter"
        raise OperationOutcomeError([error(IssueCode.NOT_FOUND, text, None)], status=404)
    return {"replayed": count}


async def purge(
    repository: SqlRepository,
    *,
    status: str = "dead",
    older_than: timedelta = timedelta(0),
    message_id: int | None = None,
    partition: str | None = None,
) -> Json:
    if status not in ("dead", "delivered"):
        text = "only finished messages (dead, delivered) are purged"
        raise OperationOutcomeError([error(IssueCode.VALUE, text, "status")], status=400)
    before = datetime.now(UTC) - older_than
    async with repository.transaction() as conn:
        count = await outbox_admin.purge(
            conn, status=status, older_than=before, message_id=message_id, partition=partition
        )
    return {"purged": count}
