"""The transactional outbox: deliveries enqueued in the same transaction as the write.

A write and the messages it owes to its subscribed targets commit together, so nothing
accepted is lost and nothing refused is sent (the "transactional outbox" pattern). Workers
claim messages with a lease: on PostgreSQL ``SELECT … FOR UPDATE SKIP LOCKED`` lets several
workers in several processes share the queue; on SQLite the single writer lock does the same.
Only the oldest pending message of a (target, patient) is ever claimable, which keeps each
patient's order at the target. A worker killed mid-delivery leaves a lease that expires; the
message is then delivered again, which the targets make harmless (conditional updates).

This module holds the queue's tables and its writing side (enqueue, the targets' names of our
resources); claiming and recording attempts are :mod:`.outbox_delivery`, the operators' views
(lists, resend, purge, depth) :mod:`.outbox_admin`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Index,
    Integer,
    String,
    Table,
    Text,
    insert,
    select,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from reko_fhir.store.repository import Change, Json
from reko_fhir.store.schema import metadata

_ID = BigInteger().with_variant(Integer, "sqlite")  # SQLite autoincrements INTEGER keys only

outbox_message = Table(
    "outbox_message",
    metadata,
    Column("id", _ID, primary_key=True, autoincrement=True),
    Column("target", String(64), nullable=False),
    Column("ordering_key", String(256), nullable=False),
    Column("resource_type", String(64), nullable=False),
    Column("resource_id", String(64), nullable=False),
    Column("version", Integer, nullable=False),
    Column("operation", String(16), nullable=False),  # "upsert" or "delete"
    Column("payload", Text, nullable=True),
    Column("status", String(16), nullable=False),  # pending, delivered, dead
    Column("attempts", Integer, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("next_attempt_at", DateTime(timezone=True), nullable=False),
    Column("locked_until", DateTime(timezone=True), nullable=True),
    Column("locked_by", String(128), nullable=True),
    Column("finished_at", DateTime(timezone=True), nullable=True),
    Column("dead_reason", String(32), nullable=True),
    Column("last_error", Text, nullable=True),
    Index("ix_outbox_due", "status", "next_attempt_at"),
    Index("ix_outbox_order", "target", "ordering_key", "status", "id"),
)

outbox_attempt = Table(
    "outbox_attempt",
    metadata,
    Column("message_id", _ID, primary_key=True),
    Column("number", Integer, primary_key=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("result", String(16), nullable=False),  # delivered, retry, dead
    Column("status", Integer, nullable=True),
    Column("reason", Text, nullable=True),
)

delivery_reference = Table(
    "delivery_reference",
    metadata,
    Column("target", String(64), primary_key=True),
    Column("local", String(200), primary_key=True),  # Patient/<id here>
    Column("remote", String(200), nullable=False),  # Patient/<id at the target>
)

# Where each resource type names its patient: the key that keeps a patient's order.
_PATIENT_ELEMENT = {
    "Consent": "patient",
    "EpisodeOfCare": "patient",
    "CarePlan": "subject",
    "CareTeam": "subject",
    "Procedure": "subject",
    "Communication": "subject",
}


def ordering_key(change: Change) -> str:
    """The patient a change concerns (``Patient/…``), or the resource itself. A deletion is
    keyed by the content it removed, so it reaches a target after the resource it deletes."""
    if change.resource_type == "Patient":
        return f"Patient/{change.resource_id}"
    element = _PATIENT_ELEMENT.get(change.resource_type)
    content = change.resource if change.resource is not None else change.before
    if element and content is not None:
        ref = (content.get(element) or {}).get("reference")
        if isinstance(ref, str) and ref:
            return ref[:256]
    return f"{change.resource_type}/{change.resource_id}"


@dataclass(frozen=True, slots=True)
class Subscription:
    """A target's interest: which resource types it is sent, or (``access_log``) the access
    log: every AuditEvent stored, and no resource (:mod:`reko_fhir.store.audit_outbox`)."""

    target: str
    resource_types: frozenset[str]
    access_log: bool = False

    def wants(self, change: Change) -> bool:
        if self.access_log:
            return False
        return not self.resource_types or change.resource_type in self.resource_types


@dataclass(frozen=True, slots=True)
class Message:
    """One delivery owed to one target."""

    id: int
    target: str
    ordering_key: str
    resource_type: str
    resource_id: str
    version: int
    operation: str
    payload: Json | None
    status: str
    attempts: int
    created_at: datetime
    next_attempt_at: datetime
    dead_reason: str | None
    last_error: str | None


@dataclass(frozen=True, slots=True)
class Attempt:
    number: int
    at: datetime
    result: str
    status: int | None
    reason: str | None


def utc(moment: datetime) -> datetime:
    """SQLite gives naive UTC back, PostgreSQL an aware time: both → aware UTC."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def message_from_row(row: Any) -> Message:
    return Message(
        id=int(row.id),
        target=row.target,
        ordering_key=row.ordering_key,
        resource_type=row.resource_type,
        resource_id=row.resource_id,
        version=row.version,
        operation=row.operation,
        payload=json.loads(row.payload) if row.payload else None,
        status=row.status,
        attempts=row.attempts,
        created_at=utc(row.created_at),
        next_attempt_at=utc(row.next_attempt_at),
        dead_reason=row.dead_reason,
        last_error=row.last_error,
    )


def content_hash(payload: Json | None) -> str | None:
    """SHA-256 of a payload as content: canonical JSON without ``meta.versionId`` and
    ``meta.lastUpdated``, which every new version changes whatever else it keeps."""
    if payload is None:
        return None
    meta = {k: v for k, v in (payload.get("meta") or {}).items() if k not in _VERSION_META}
    content = {k: v for k, v in payload.items() if k != "meta"} | ({"meta": meta} if meta else {})
    text = json.dumps(content, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


_VERSION_META = ("versionId", "lastUpdated")


@dataclass(slots=True)
class _Sent:
    """What a target was last queued for one resource: its operation and content hash."""

    operation: str
    digest: str | None
    status: str


async def _queued_before(
    conn: AsyncConnection, changes: Sequence[Change], targets: Sequence[str]
) -> tuple[dict[tuple[str, str], _Sent], set[tuple[str, str]]]:
    """For the resources of ``changes``: the newest message each target holds for it, and the
    (target, ``Type/id``) pairs the target is known to have received (its id there is known).

    Looked up through the (target, patient) index: a resource's earlier messages carry the
    same patient key. A new resource (version 1) has none, so a bulk load asks nothing.
    """
    wanted = [c for c in changes if c.version > 1]
    if not wanted or not targets:
        return {}, set()
    locals_ = {f"{c.resource_type}/{c.resource_id}" for c in wanted}
    keys = sorted({ordering_key(c) for c in wanted})
    newest: dict[tuple[str, str], _Sent] = {}
    rows = await conn.execute(
        select(
            outbox_message.c.target,
            outbox_message.c.resource_type,
            outbox_message.c.resource_id,
            outbox_message.c.operation,
            outbox_message.c.payload,
            outbox_message.c.status,
        )
        .where(
            outbox_message.c.target.in_(list(targets)),
            outbox_message.c.ordering_key.in_(keys),
            outbox_message.c.resource_id.in_(sorted({c.resource_id for c in wanted})),
        )
        .order_by(outbox_message.c.id)
    )
    for row in rows:
        local = f"{row.resource_type}/{row.resource_id}"
        if local in locals_:
            payload = json.loads(row.payload) if row.payload else None
            digest = content_hash(payload) if row.operation == "upsert" else None
            newest[(row.target, local)] = _Sent(row.operation, digest, row.status)
    known = await conn.execute(
        select(delivery_reference.c.target, delivery_reference.c.local).where(
            delivery_reference.c.target.in_(list(targets)),
            delivery_reference.c.local.in_(sorted(locals_)),
        )
    )
    return newest, {(row.target, row.local) for row in known}


async def enqueue(
    conn: AsyncConnection, changes: Sequence[Change], subscriptions: Sequence[Subscription]
) -> int:
    """Queue the messages ``changes`` owe their interested targets, on the writer's own
    transaction.

    - An upsert whose content equals what the target was last queued for that resource
      (pending or delivered, by :func:`content_hash`) is not queued again: the target holds it
      or will. A dead letter does not count: sending the same again is how a resend retries.
    - A deletion goes only to targets that received the resource or have it queued, and
      carries the content it removed (``Change.before``): the target deletes by its business
      identifier (https://hl7.org/fhir/R4/http.html#3.1.0.7.1) and keeps the patient's order.
    """
    now = datetime.now(UTC)
    targets = sorted({sub.target for sub in subscriptions})
    newest, received = await _queued_before(conn, changes, targets)
    rows: list[dict[str, Any]] = []
    for change in changes:
        local = f"{change.resource_type}/{change.resource_id}"
        deleting = change.resource is None
        payload = change.before if deleting else change.resource
        digest = None if deleting else content_hash(payload)
        for sub in subscriptions:
            if not sub.wants(change):
                continue
            last = newest.get((sub.target, local))
            if deleting:
                queued = last is not None and last.operation == "upsert"
                if not queued and not (last is None and (sub.target, local) in received):
                    continue  # never sent there, or its deletion is queued already
            elif (
                last
                and last.operation == "upsert"
                and last.status != "dead"
                and (last.digest == digest)
            ):
                continue  # the same content is there already, or on its way
            newest[(sub.target, local)] = _Sent(
                "delete" if deleting else "upsert", digest, "pending"
            )
            rows.append(
                {
                    "target": sub.target,
                    "ordering_key": ordering_key(change),
                    "resource_type": change.resource_type,
                    "resource_id": change.resource_id,
                    "version": change.version,
                    "operation": "delete" if deleting else "upsert",
                    "payload": None
                    if payload is None
                    else json.dumps(payload, ensure_ascii=False, separators=(",", ":")),
                    "status": "pending",
                    "attempts": 0,
                    "created_at": now,
                    "next_attempt_at": now,
                }
            )
    if rows:
        await conn.execute(insert(outbox_message), rows)
    return len(rows)


async def known_references(
    conn: AsyncConnection, target: str, local: Sequence[str]
) -> dict[str, str]:
    """What the ``local`` references (``Type/id``) are called at ``target``, where known."""
    if not local:
        return {}
    rows = await conn.execute(
        select(delivery_reference.c.local, delivery_reference.c.remote).where(
            delivery_reference.c.target == target,
            delivery_reference.c.local.in_(sorted(set(local))),
        )
    )
    return {row.local: row.remote for row in rows}


async def remember_references(conn: AsyncConnection, target: str, pairs: dict[str, str]) -> None:
    """Record (or correct) the target's ids of resources it has received: one upsert
    (``INSERT … ON CONFLICT DO UPDATE``, PostgreSQL and SQLite alike) that rewrites a row only
    when the target's id changed."""
    if not pairs:
        return
    dialect = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    statement = dialect(delivery_reference)
    await conn.execute(
        statement.on_conflict_do_update(
            index_elements=[delivery_reference.c.target, delivery_reference.c.local],
            set_={"remote": statement.excluded.remote},
            where=delivery_reference.c.remote != statement.excluded.remote,
        ),
        [{"target": target, "local": local, "remote": remote} for local, remote in pairs.items()],
    )


async def local_names(conn: AsyncConnection, target: str) -> dict[str, str]:
    """The other way round: the target's ``Type/id`` → ours, for what it has received."""
    rows = await conn.execute(
        select(delivery_reference.c.local, delivery_reference.c.remote).where(
            delivery_reference.c.target == target
        )
    )
    return {row.remote: row.local for row in rows}
