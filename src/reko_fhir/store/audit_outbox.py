"""The access log's way to the national log service: each stored AuditEvent queued once per
access-log target (``kind: storelog``), in the transaction that stores the event.

The message carries the AuditEvent (https://hl7.org/fhir/R4/auditevent.html) with each patient
entity's ``what.identifier`` filled in with the patient's personnummer or samordningsnummer as
it stands when the access is logged (BALP allows reference and identifier together,
https://profiles.ihe.net/ITI/BALP/), so the log post names the patient even if the Patient is
later changed or deleted. Every message is keyed by its own event (``AuditEvent/<id>``): log
posts have no order to keep, so none waits behind another and a batch may carry any of them.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from reko_fhir.mapping.codings import PERSONNUMMER, SAMORDNINGSNUMMER
from reko_fhir.store.outbox import Subscription, outbox_message
from reko_fhir.store.repository import Json
from reko_fhir.store.schema import resource_current, resource_version

_NATIONAL = (PERSONNUMMER, SAMORDNINGSNUMMER)


def log_targets(subscriptions: Iterable[Subscription]) -> list[str]:
    """The names of the access-log targets among ``subscriptions``."""
    return sorted({s.target for s in subscriptions if s.access_log})


async def enqueue_events(
    conn: AsyncConnection, events: Sequence[tuple[str, Json]], targets: Sequence[str]
) -> int:
    """Queue each ``(id, AuditEvent)`` of ``events`` for every one of ``targets``."""
    if not events or not targets:
        return 0
    patients = {
        reference.removeprefix("Patient/")
        for _, content in events
        for reference in _patient_references(content)
    }
    numbers = await national_numbers(conn, sorted(patients))
    now = datetime.now(UTC)
    rows: list[dict[str, Any]] = []
    for event_id, content in events:
        payload = json.dumps(
            with_patient_identifiers(content, numbers), ensure_ascii=False, separators=(",", ":")
        )
        rows += [
            {
                "target": target,
                "ordering_key": f"AuditEvent/{event_id}",
                "resource_type": "AuditEvent",
                "resource_id": event_id,
                "version": 1,
                "operation": "upsert",
                "payload": payload,
                "status": "pending",
                "attempts": 0,
                "created_at": now,
                "next_attempt_at": now,
            }
            for target in targets
        ]
    await conn.execute(insert(outbox_message), rows)
    return len(rows)


def _patient_references(content: Json) -> list[str]:
    found = []
    for entity in content.get("entity") or []:
        reference = ((entity or {}).get("what") or {}).get("reference")
        if isinstance(reference, str) and reference.startswith("Patient/"):
            found.append(reference)
    return found


def with_patient_identifiers(content: Json, numbers: dict[str, Json]) -> Json:
    """``content`` with ``entity.what.identifier`` set for every patient whose number is known."""
    event = copy.deepcopy(content)
    for entity in event.get("entity") or []:
        what = (entity or {}).get("what") or {}
        reference = what.get("reference")
        if isinstance(reference, str) and reference.startswith("Patient/"):
            number = numbers.get(reference.removeprefix("Patient/"))
            if number is not None:
                what["identifier"] = number
    return event


async def national_numbers(conn: AsyncConnection, patient_ids: Sequence[str]) -> dict[str, Json]:
    """Patient id → its personnummer/samordningsnummer identifier (system, value), from the
    current version, or for a deleted Patient from its newest stored version."""
    if not patient_ids:
        return {}
    found: dict[str, Json] = {}
    rows = await conn.execute(
        select(resource_current.c.id, resource_current.c.content).where(
            resource_current.c.type == "Patient", resource_current.c.id.in_(list(patient_ids))
        )
    )
    for row in rows:
        number = _national(row.content)
        if number is not None:
            found[row.id] = number
    missing = [pid for pid in patient_ids if pid not in found]
    if missing:
        rows = await conn.execute(
            select(resource_version.c.id, resource_version.c.content)
            .where(
                resource_version.c.type == "Patient",
                resource_version.c.id.in_(missing),
                resource_version.c.deleted.is_(False),
            )
            .order_by(resource_version.c.version.desc())
        )
        for row in rows:
            number = _national(row.content)
            if number is not None and row.id not in found:
                found[row.id] = number
    return found


def _national(text: str | None) -> Json | None:
    if not text:
        return None
    for identifier in json.loads(text).get("identifier") or []:
        if isinstance(identifier, dict) and identifier.get("system") in _NATIONAL:
            value = identifier.get("value")
            if isinstance(value, str) and value:
                return {"system": identifier["system"], "value": value}
    return None
