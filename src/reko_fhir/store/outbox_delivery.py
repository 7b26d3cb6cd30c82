"""The worker's side of the outbox: claiming due messages under a lease, and recording how
each attempt ended (:mod:`reko_fhir.delivery.worker` does both in one transaction a turn)."""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Integer, bindparam, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from reko_fhir.store.conditions import any_row
from reko_fhir.store.outbox import (
    Message,
    message_from_row,
    outbox_attempt,
    outbox_message,
    remember_references,
)


@functools.cache
def _claim_statement(by_target: bool, skip_locked: bool) -> Any:
    """The claim as one ``UPDATE … WHERE id IN (SELECT … [FOR UPDATE SKIP LOCKED]) RETURNING``
    (SQLite has RETURNING since 3.35): one statement a claim instead of select, update and
    select again, and built once, since building the expression cost more than running it."""
    m = outbox_message.alias("m")
    earlier = outbox_message.alias("earlier")
    now = bindparam("now", type_=outbox_message.c.next_attempt_at.type)
    # A probe per candidate through ix_outbox_order (any_row: not an anti-join).
    blocked_by_earlier = any_row(
        earlier.c.target == m.c.target,
        earlier.c.ordering_key == m.c.ordering_key,
        earlier.c.status == "pending",
        earlier.c.id < m.c.id,
    )
    due = (
        select(m.c.id)
        .where(
            m.c.status == "pending",
            m.c.next_attempt_at <= now,
            (m.c.locked_until.is_(None)) | (m.c.locked_until < now),
            ~blocked_by_earlier,
        )
        .order_by(m.c.id)
        .limit(bindparam("limit", type_=Integer()))
    )
    if by_target:
        due = due.where(m.c.target.in_(bindparam("targets", expanding=True)))
    if skip_locked:
        due = due.with_for_update(of=m, skip_locked=True)
    return (
        update(outbox_message)
        .where(outbox_message.c.id.in_(due.scalar_subquery()))
        .values(
            locked_until=bindparam("until", type_=outbox_message.c.locked_until.type),
            locked_by=bindparam("worker", type_=outbox_message.c.locked_by.type),
        )
        .returning(*outbox_message.c)
    )


async def claim(
    conn: AsyncConnection,
    *,
    worker: str,
    limit: int,
    lease: timedelta,
    targets: Sequence[str] | None = None,
    skip_locked: bool = False,
) -> list[Message]:
    """Lease up to ``limit`` due messages, each the oldest pending one of its patient."""
    now = datetime.now(UTC)
    params: dict[str, Any] = {"now": now, "limit": limit, "until": now + lease, "worker": worker}
    if targets:
        params["targets"] = list(targets)
    rows = await conn.execute(_claim_statement(bool(targets), skip_locked), params)
    return sorted((message_from_row(row) for row in rows), key=lambda message: message.id)


@dataclass(frozen=True, slots=True)
class AttemptOutcome:
    """How attempt N of ``message`` ended: delivered, retry (at ``next_attempt_at``), dead."""

    message: Message
    result: str
    status: int | None = None
    reason: str | None = None
    next_attempt_at: datetime | None = None
    dead_reason: str | None = None


async def record_attempts(conn: AsyncConnection, outcomes: Sequence[AttemptOutcome]) -> None:
    """Write each attempt and move its message on; the common case (delivered) in bulk."""
    if not outcomes:
        return
    now = datetime.now(UTC)
    await conn.execute(
        insert(outbox_attempt),
        [
            {
                "message_id": o.message.id,
                "number": o.message.attempts + 1,
                "at": now,
                "result": o.result,
                "status": o.status,
                "reason": o.reason[:4000] if o.reason else None,
            }
            for o in outcomes
        ],
    )
    pending = outbox_message.c.status == "pending"
    delivered = [o.message.id for o in outcomes if o.result == "delivered"]
    if delivered:
        await conn.execute(
            update(outbox_message)
            .where(outbox_message.c.id.in_(delivered), pending)
            .values(
                status="delivered",
                attempts=outbox_message.c.attempts + 1,
                finished_at=now,
                last_error=None,
                locked_until=None,
                locked_by=None,
            )
        )
    for o in outcomes:
        if o.result == "delivered":
            continue
        values: dict[str, Any] = {
            "attempts": o.message.attempts + 1,
            "locked_until": None,
            "locked_by": None,
            "last_error": o.reason,
        }
        if o.result == "retry":
            values["next_attempt_at"] = o.next_attempt_at or now
        else:
            values |= {"status": "dead", "finished_at": now, "dead_reason": o.dead_reason}
        await conn.execute(
            update(outbox_message)
            .where(outbox_message.c.id == o.message.id, pending)
            .values(**values)
        )


_PG_RECORD = """
WITH outcome AS (
  SELECT * FROM unnest(%(id)b::bigint[], %(number)b::integer[], %(result)b::text[],
    %(status)b::integer[], %(reason)b::text[], %(next_at)b::timestamptz[], %(dead)b::text[])
    AS o(id, number, result, status, reason, next_at, dead_reason)
), attempt AS (
  INSERT INTO outbox_attempt (message_id, number, at, result, status, reason)
  SELECT id, number, %(now)s, result, status, NULLIF(left(reason, 4000), '') FROM outcome
), reference AS (
  INSERT INTO delivery_reference (target, local, remote)
  SELECT * FROM unnest(%(target)b::text[], %(local)b::text[], %(remote)b::text[])
  ON CONFLICT (target, local) DO UPDATE SET remote = excluded.remote
  WHERE delivery_reference.remote <> excluded.remote
)
UPDATE outbox_message AS m SET
  status = CASE WHEN o.result = 'retry' THEN m.status ELSE o.result END,
  attempts = CASE WHEN o.result = 'delivered' THEN m.attempts + 1 ELSE o.number END,
  next_attempt_at = CASE WHEN o.result = 'retry' THEN o.next_at ELSE m.next_attempt_at END,
  finished_at = CASE WHEN o.result = 'retry' THEN m.finished_at ELSE %(now)s END,
  dead_reason = CASE WHEN o.result = 'dead' THEN o.dead_reason ELSE m.dead_reason END,
  last_error = CASE WHEN o.result = 'delivered' THEN NULL ELSE o.reason END,
  locked_until = NULL, locked_by = NULL
FROM outcome AS o WHERE m.id = o.id AND m.status = 'pending'
"""
""":func:`record` on PostgreSQL: attempts, messages and references in one statement, the same
text whatever the batch (so the driver prepares it once). Each statement is a round trip, and
the worker records after every slot's worth of deliveries. The arrays go in binary (``%b``):
psycopg escapes every quote of a text array with a regular expression."""


async def record(
    conn: AsyncConnection,
    outcomes: Sequence[AttemptOutcome],
    references: Mapping[str, Mapping[str, str]],
) -> None:
    """Record a turn's outcomes (:func:`record_attempts`) and what the targets named the
    resources they received (``references``: target → our ``Type/id`` → theirs, as
    :func:`~reko_fhir.store.outbox.remember_references`), on the caller's transaction.

    One statement on PostgreSQL, where each is a round trip; on SQLite the same writes as
    separate statements (there a statement costs no trip)."""
    if conn.dialect.name != "postgresql":
        await record_attempts(conn, outcomes)
        for target, pairs in references.items():
            await remember_references(conn, target, dict(pairs))
        return
    if not outcomes and not any(references.values()):
        return
    now = datetime.now(UTC)
    named = [
        (t, local, remote) for t, names in references.items() for local, remote in names.items()
    ]
    await conn.exec_driver_sql(
        _PG_RECORD,
        {
            "now": now,
            "id": [o.message.id for o in outcomes],
            "number": [o.message.attempts + 1 for o in outcomes],
            "result": [o.result for o in outcomes],
            "status": [o.status for o in outcomes],
            "reason": [o.reason for o in outcomes],
            "next_at": [
                (o.next_attempt_at or now) if o.result == "retry" else None for o in outcomes
            ],
            "dead": [o.dead_reason if o.result == "dead" else None for o in outcomes],
            "target": [n[0] for n in named],
            "local": [n[1] for n in named],
            "remote": [n[2] for n in named],
        },
    )
