"""The patient-data access log: append-only AuditEvent rows.

https://hl7.org/fhir/R4/auditevent.html, modelled on IHE BALP (https://profiles.ihe.net/ITI/BALP/).

Every access to patient data is one ``audit_event`` row holding the AuditEvent JSON, plus one
``audit_patient`` row per patient it names, so a patient's log (who read my record?) and a
unit's log (what did our staff access?) are index look-ups. The log is append-only: this module
has no update and no delete, and an event's id is its primary key, so a row once written is
never overwritten (a second insert with the same id fails).

The columns beside ``content`` are what the log is searched by; ``content`` is the record.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Column, DateTime, Index, String, Table, Text, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from reko_fhir.store import audit_outbox
from reko_fhir.store.conditions import date_condition
from reko_fhir.store.outbox import Subscription
from reko_fhir.store.pending import PendingInserts
from reko_fhir.store.repository import Json
from reko_fhir.store.schema import metadata

audit_event = Table(
    "audit_event",
    metadata,
    Column("id", String(64), primary_key=True),  # uuid4 hex, also AuditEvent.id
    Column("recorded", DateTime(timezone=True), nullable=False),
    Column("action", String(1), nullable=False),  # C R U D E (AuditEvent.action)
    Column("outcome", String(2), nullable=False),  # 0 4 8 12 (AuditEvent.outcome)
    Column("agent", String(128), nullable=False),  # who: the user's or system's HSA-id
    Column("unit", String(128), nullable=True),  # on behalf of: care unit HSA-id or actor
    Column("content", Text, nullable=False),  # the AuditEvent JSON
    Index("ix_audit_recorded", "recorded"),
    Index("ix_audit_unit", "unit", "recorded"),
)

audit_patient = Table(
    "audit_patient",
    metadata,
    Column("audit_id", String(64), nullable=False),
    Column("patient", String(128), nullable=False),  # Patient/<id>
    Index("ix_audit_patient", "patient", "audit_id"),
)


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One AuditEvent as stored: ``content`` is the resource, the rest what it is found by."""

    id: str
    recorded: datetime
    action: str
    outcome: str
    agent: str
    unit: str | None
    patients: tuple[str, ...]
    content: Json


async def append(
    conn: AsyncConnection, events: Sequence[AuditEntry], *, subscriptions: Sequence[Subscription]
) -> None:
    """Insert ``events`` (one statement on PostgreSQL, two on SQLite) on the caller's
    transaction, and queue each for the access-log targets among ``subscriptions`` on the same
    transaction: an event is stored and owed to the national log together, or neither (a
    required argument, so no caller can store an event and forget its shipping)."""
    pending = PendingInserts()
    queue(pending, events)
    await pending.flush(conn)
    await ship(conn, events, subscriptions=subscriptions)


def queue(pending: PendingInserts, events: Sequence[AuditEntry]) -> None:
    """Add the rows of ``events`` to ``pending``: a write's access-log record goes in the same
    flush as the write's own rows (one statement on PostgreSQL, every table in it, so the
    driver prepares one text for every batch size). :func:`ship` must follow the flush."""
    if not events:
        return
    pending.add(
        audit_event,
        [
            {
                "id": e.id,
                # SQLite drops the offset and stores the wall time: store UTC, always.
                "recorded": _utc(e.recorded),
                "action": e.action,
                "outcome": e.outcome,
                "agent": e.agent,
                "unit": e.unit,
                "content": json.dumps(e.content, ensure_ascii=False, separators=(",", ":")),
            }
            for e in events
        ],
    )
    patients = [{"audit_id": e.id, "patient": p} for e in events for p in dict.fromkeys(e.patients)]
    if patients:
        pending.add(audit_patient, patients)


async def ship(
    conn: AsyncConnection, events: Sequence[AuditEntry], *, subscriptions: Sequence[Subscription]
) -> None:
    """Queue the stored ``events`` for the access-log targets among ``subscriptions``."""
    targets = audit_outbox.log_targets(subscriptions)
    if events and targets:
        await audit_outbox.enqueue_events(conn, [(e.id, e.content) for e in events], targets)


async def search(
    conn: AsyncConnection,
    *,
    patient: str | None = None,
    date_params: Sequence[str] = (),
    unit: str | None = None,
    count: int = 20,
    offset: int = 0,
) -> list[Json]:
    """One page of the matching AuditEvents, newest first.

    ``patient`` is ``Patient/123``, ``123`` or a comma list of them (any matches); each of
    ``date_params`` is a ``date`` value with a prefix on ``recorded`` (all must hold,
    https://hl7.org/fhir/R4/search.html#prefix); ``unit`` None means every unit.
    """
    query = (
        _filtered(patient, date_params, unit)
        .order_by(audit_event.c.recorded.desc(), audit_event.c.id.desc())
        .limit(count)
        .offset(offset)
    )
    return [json.loads(row.content) for row in (await conn.execute(query)).all()]


async def total(
    conn: AsyncConnection,
    *,
    patient: str | None = None,
    date_params: Sequence[str] = (),
    unit: str | None = None,
) -> int:
    """How many AuditEvents :func:`search` matches over all its pages."""
    query = _filtered(patient, date_params, unit).with_only_columns(func.count())
    return int((await conn.execute(query)).scalar_one())


async def read(conn: AsyncConnection, event_id: str, *, unit: str | None = None) -> Json | None:
    """The AuditEvent with ``event_id`` (recorded for ``unit``, when given), None otherwise."""
    query = select(audit_event.c.content).where(audit_event.c.id == event_id)
    if unit is not None:
        query = query.where(audit_event.c.unit == unit)
    row = (await conn.execute(query)).first()
    return None if row is None else dict(json.loads(row.content))


def _filtered(patient: str | None, date_params: Sequence[str], unit: str | None) -> Any:
    # select_from: an unfiltered count() would otherwise lose its FROM (and count one row).
    query = select(audit_event.c.content).select_from(audit_event)
    if patient is not None:
        targets = [v if "/" in v else f"Patient/{v}" for v in patient.split(",") if v]
        query = query.where(
            audit_event.c.id.in_(
                select(audit_patient.c.audit_id).where(audit_patient.c.patient.in_(targets))
            )
        )
    for value in date_params:
        query = query.where(date_condition(audit_event.c.recorded, value))
    if unit is not None:
        query = query.where(audit_event.c.unit == unit)
    return query


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError("an AuditEvent's recorded time must be timezone-aware")
    return moment.astimezone(UTC)
