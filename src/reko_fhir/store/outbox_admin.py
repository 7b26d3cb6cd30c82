"""The outbox as operators see it: lists, one message with its attempts, resending dead
letters, purging finished messages, and queue depth for metrics (``reko-fhir outbox``, the
admin API). A unit's operator sees only messages about its own unit's resources."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, delete, func, literal, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from reko_fhir.store.conditions import any_row
from reko_fhir.store.outbox import (
    Attempt,
    Message,
    message_from_row,
    outbox_attempt,
    outbox_message,
    utc,
)
from reko_fhir.store.repository import Json
from reko_fhir.store.schema import resource_current


def in_partition(partition: str | None) -> Any:
    """Messages of one care unit's resources (None: every unit's): the outbox holds patient
    data too, and a unit's operator sees its own unit's only."""
    if partition is None:
        return literal(True)
    return any_row(
        resource_current.c.type == outbox_message.c.resource_type,
        resource_current.c.id == outbox_message.c.resource_id,
        resource_current.c.partition == partition,
    )


async def messages(
    conn: AsyncConnection,
    *,
    status: str | None = None,
    target: str | None = None,
    limit: int = 100,
    partition: str | None = None,
) -> list[Message]:
    query = (
        select(outbox_message)
        .where(in_partition(partition))
        .order_by(outbox_message.c.id)
        .limit(limit)
    )
    if status:
        query = query.where(outbox_message.c.status == status)
    if target:
        query = query.where(outbox_message.c.target == target)
    return [message_from_row(row) for row in await conn.execute(query)]


async def message(
    conn: AsyncConnection, message_id: int, *, partition: str | None = None
) -> tuple[Message, list[Attempt]] | None:
    row = (
        await conn.execute(
            select(outbox_message).where(outbox_message.c.id == message_id, in_partition(partition))
        )
    ).first()
    if row is None:
        return None
    attempts = await conn.execute(
        select(outbox_attempt)
        .where(outbox_attempt.c.message_id == message_id)
        .order_by(outbox_attempt.c.number)
    )
    return message_from_row(row), [
        Attempt(a.number, utc(a.at), a.result, a.status, a.reason) for a in attempts
    ]


async def replay(
    conn: AsyncConnection,
    *,
    message_id: int | None = None,
    target: str | None = None,
    payload: Json | None = None,
    partition: str | None = None,
) -> int:
    """Dead letters back to pending (one, a target's, or all); ``payload`` edits one first."""
    values: dict[str, Any] = {
        "status": "pending",
        "next_attempt_at": datetime.now(UTC),
        "finished_at": None,
        "dead_reason": None,
        "locked_until": None,
        "locked_by": None,
    }
    if payload is not None:
        values["payload"] = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    query = update(outbox_message).where(outbox_message.c.status == "dead", in_partition(partition))
    if message_id is not None:
        query = query.where(outbox_message.c.id == message_id)
    if target is not None:
        query = query.where(outbox_message.c.target == target)
    result = await conn.execute(query.values(**values))
    return int(result.rowcount)


async def purge(
    conn: AsyncConnection,
    *,
    status: str,
    older_than: datetime,
    message_id: int | None = None,
    partition: str | None = None,
) -> int:
    """Remove finished messages (delivered or dead) finished before ``older_than``."""
    condition = and_(
        outbox_message.c.status == status,
        outbox_message.c.finished_at < older_than,
        in_partition(partition),
    )
    if message_id is not None:
        condition = and_(condition, outbox_message.c.id == message_id)
    doomed = select(outbox_message.c.id).where(condition)
    await conn.execute(delete(outbox_attempt).where(outbox_attempt.c.message_id.in_(doomed)))
    result = await conn.execute(delete(outbox_message).where(condition))
    return int(result.rowcount)


async def depth(conn: AsyncConnection) -> dict[tuple[str, str], tuple[int, datetime | None]]:
    """(target, status) → (messages, oldest created_at): queue depth and age for metrics."""
    query = select(
        outbox_message.c.target,
        outbox_message.c.status,
        func.count(),
        func.min(outbox_message.c.created_at),
    ).group_by(outbox_message.c.target, outbox_message.c.status)
    return {
        (row[0], row[1]): (int(row[2]), utc(row[3]) if row[3] is not None else None)
        for row in await conn.execute(query)
    }
