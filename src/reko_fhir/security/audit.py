"""The access log: one FHIR AuditEvent per access to patient data, committed before the answer.

The events follow IHE Basic Audit Log Patterns (https://profiles.ihe.net/ITI/BALP/) on FHIR R4
AuditEvent (https://hl7.org/fhir/R4/auditevent.html): type ``rest`` with the RESTful
interaction as subtype, the user (HSA-id) as requesting agent, the care unit it acts for, the
client and the server, one entity per patient and per resource touched, and the search query.

:class:`AuditLog` writes with *group commit*: every :meth:`AuditLog.record` returns only after
its row is committed, but records arriving together share one transaction. On SQLite each
write transaction takes the single write lock; one per read request would cut the read
throughput down to the write throughput.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import uuid
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from reko_fhir.store import audit as store
from reko_fhir.store.audit import AuditEntry
from reko_fhir.store.audit_outbox import log_targets
from reko_fhir.store.outbox import Subscription
from reko_fhir.store.repository import Json

logger = logging.getLogger("reko_fhir.audit")

HSA = "urn:oid:1.2.752.29.4.19"
OBSERVER = "reko-fhir"
MOST_ENTITIES = 50
"""Resources one access-log record names (a search page names its patients; the rest of its
entries stay countable)."""
_DCM = "http://dicom.nema.org/resources/ontology/DCM"
_EVENT_TYPE = "http://terminology.hl7.org/CodeSystem/audit-event-type"
_INTERACTION = "http://hl7.org/fhir/restful-interaction"
_PARTICIPATION = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
_ROLE_CLASS = "http://terminology.hl7.org/CodeSystem/v3-RoleClass"
_ENTITY_TYPE = "http://terminology.hl7.org/CodeSystem/audit-entity-type"
_OBJECT_ROLE = "http://terminology.hl7.org/CodeSystem/object-role"
_SOURCE_TYPE = "http://terminology.hl7.org/CodeSystem/security-source-type"

ACTIONS = frozenset("CRUDE")  # https://hl7.org/fhir/R4/valueset-audit-event-action.html
# https://hl7.org/fhir/R4/valueset-type-restful-interaction.html, plus the outbox's delivery.
RESTFUL_INTERACTIONS = frozenset(
    {
        "read",
        "vread",
        "update",
        "patch",
        "delete",
        "history",
        "history-instance",
        "history-type",
        "history-system",
        "create",
        "search",
        "search-type",
        "search-system",
        "capabilities",
        "transaction",
        "batch",
        "operation",
    }
)
DELIVERY = "delivery"
_LIMIT = 128  # the width of the agent, unit and patient columns

# The user agent's type, from BALP's UserAgentTypesVS: a recipient of what it reads, an agent
# of what it writes, an informant of what the outbox exports.
_USER_TYPE = {
    "R": (_PARTICIPATION, "IRCP", "information recipient"),
    "E": (_PARTICIPATION, "IRCP", "information recipient"),
    "C": (_ROLE_CLASS, "AGNT", "agent"),
    "U": (_ROLE_CLASS, "AGNT", "agent"),
    "D": (_ROLE_CLASS, "AGNT", "agent"),
}


@dataclass(frozen=True, slots=True)
class AccessRecord:
    """One access to patient data, as the API saw it.

    ``patients`` are ``Patient/<id>``; ``entities`` the other resources touched
    (``Procedure/9``); ``query`` the search's query string, already masked by the caller.
    """

    action: str
    interaction: str
    outcome: int
    agent: str
    unit: str | None
    client_id: str | None
    source_address: str | None
    patients: tuple[str, ...]
    entities: tuple[str, ...]
    query: str | None
    recorded: datetime

    def __post_init__(self) -> None:
        # Checked here, in the caller, so one bad record fails alone instead of its whole batch.
        if self.action not in ACTIONS:
            raise ValueError(f"AuditEvent.action is one of C R U D E, not {self.action!r}")
        if self.interaction not in RESTFUL_INTERACTIONS and self.interaction != DELIVERY:
            raise ValueError(f"{self.interaction!r} is not a RESTful interaction")
        if not 100 <= self.outcome <= 599:
            raise ValueError(f"{self.outcome} is not an HTTP status")
        if not self.agent or len(self.agent) > _LIMIT:
            raise ValueError(f"the agent is an HSA-id of 1 to {_LIMIT} characters")
        if self.unit is not None and not 0 < len(self.unit) <= _LIMIT:
            raise ValueError(f"the unit is an identifier of 1 to {_LIMIT} characters")
        for patient in self.patients:
            if not patient.startswith("Patient/") or len(patient) > _LIMIT:
                raise ValueError(f"{patient!r} is not a Patient reference")
        if self.recorded.tzinfo is None:
            raise ValueError("recorded must be timezone-aware")


def outcome_code(status: int) -> str:
    """AuditEvent.outcome for an HTTP status: 0 success, 4 minor (the client's), 8 serious."""
    if status < 400:
        return "0"
    return "4" if status < 500 else "8"


def audit_event(record: AccessRecord, *, event_id: str | None = None) -> Json:
    """The FHIR R4 AuditEvent of ``record`` (https://hl7.org/fhir/R4/auditevent.html), shaped
    after BALP's RESTful patterns (https://profiles.ihe.net/ITI/BALP/content.html)."""
    event: Json = {"resourceType": "AuditEvent"}
    if event_id is not None:
        event["id"] = event_id
    if record.interaction == DELIVERY:
        # The outbox sending data to another system: an export (DICOM 110106) over REST.
        subtype = _coding(_DCM, "110106", "Export")
    else:
        subtype = _coding(_INTERACTION, record.interaction, record.interaction)
    status = outcome_code(record.outcome)
    event |= {
        "type": _coding(_EVENT_TYPE, "rest", "Restful Operation"),
        "subtype": [subtype],
        "action": record.action,
        "recorded": _instant(record.recorded),
        "outcome": status,
    }
    if status != "0":
        event["outcomeDesc"] = f"HTTP {record.outcome}"
    event["agent"] = _agents(record)
    event["source"] = {
        "observer": {"display": OBSERVER},
        "type": [_coding(_SOURCE_TYPE, "4", "Application Server")],
    }
    entities = [_entity(p, ("1", "Person"), ("1", "Patient")) for p in record.patients]
    entities += [
        _entity(e, ("2", "System Object"), ("4", "Domain Resource")) for e in record.entities
    ]
    if record.query is not None:
        # AuditEvent.entity.query is base64Binary (BALP's Query pattern).
        encoded = base64.b64encode(record.query.encode()).decode("ascii")
        entities.append(
            {
                "type": _coding(_ENTITY_TYPE, "2", "System Object"),
                "role": _coding(_OBJECT_ROLE, "24", "Query"),
                "query": encoded,
            }
        )
    if entities:
        event["entity"] = entities
    return event


def audit_entry(record: AccessRecord, *, event_id: str | None = None) -> AuditEntry:
    """The row :func:`reko_fhir.store.audit.append` stores for ``record`` (a new uuid4 id)."""
    new_id = event_id or uuid.uuid4().hex
    return AuditEntry(
        id=new_id,
        recorded=record.recorded.astimezone(UTC),
        action=record.action,
        outcome=outcome_code(record.outcome),
        agent=record.agent,
        unit=record.unit,
        patients=tuple(dict.fromkeys(record.patients)),
        content=audit_event(record, event_id=new_id),
    )


def _agents(record: AccessRecord) -> list[Json]:
    system, code, display = (
        (_PARTICIPATION, "INF", "informant")
        if record.interaction == DELIVERY
        else _USER_TYPE[record.action]
    )
    user: Json = {
        "type": {"coding": [_coding(system, code, display)]},
        "who": {"identifier": {"system": HSA, "value": record.agent}},
        "requestor": True,
    }
    if record.source_address:
        user["network"] = {"address": record.source_address, "type": "2"}  # 2: IP address
    agents = [user]
    if record.unit is not None:
        agents.append(_unit_agent(record.unit))
    if record.client_id:
        # BALP: the client is the Source Role ID, the server the Destination Role ID.
        agents.append(
            {
                "type": {"coding": [_coding(_DCM, "110153", "Source Role ID")]},
                "who": {"identifier": {"value": record.client_id}},
                "requestor": False,
            }
        )
    agents.append(
        {
            "type": {"coding": [_coding(_DCM, "110152", "Destination Role ID")]},
            "who": {"display": OBSERVER},
            "requestor": False,
        }
    )
    return agents


def _unit_agent(unit: str) -> Json:
    """The care unit (HSA-id) the user acts for, or an outside actor given as system|value."""
    system, bar, value = unit.partition("|")
    if bar:
        return {"who": {"identifier": {"system": system, "value": value}}, "requestor": False}
    return {
        "type": {"coding": [_coding(_ROLE_CLASS, "PROV", "healthcare provider")]},
        "who": {"identifier": {"system": HSA, "value": unit}},
        "requestor": False,
    }


def _entity(reference: str, kind: tuple[str, str], role: tuple[str, str]) -> Json:
    return {
        "what": {"reference": reference},
        "type": _coding(_ENTITY_TYPE, *kind),
        "role": _coding(_OBJECT_ROLE, *role),
    }


def _coding(system: str, code: str, display: str) -> Json:
    return {"system": system, "code": code, "display": display}


def _instant(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


class AuditWriteError(RuntimeError):
    """The access could not be logged; ``__cause__`` says why. The data must not be released."""


Transaction = Callable[[], AbstractAsyncContextManager[AsyncConnection]]


class AuditLog:
    """Appends AuditEvents with group commit (asyncio only; no threads).

    ``transaction`` opens a writing transaction that commits when its block ends (pass
    ``SqlRepository.transaction``, and its ``subscriptions``: each event is queued for the
    access-log targets among them in the event's own transaction). One background task writes
    whatever is queued, up to ``batch_size`` records per transaction, and starts the next batch
    as soon as the previous one committed; records that arrive during a commit wait for the
    next one.

    ``statement``, when given, opens a connection on which one statement commits by itself
    (PostgreSQL autocommit): used when a batch is one statement (no access-log targets, see
    :func:`reko_fhir.store.audit.append`), so a batch costs one round trip, not four.
    """

    def __init__(
        self,
        transaction: Transaction,
        *,
        batch_size: int = 500,
        subscriptions: Sequence[Subscription] = (),
        statement: Transaction | None = None,
    ) -> None:
        self._transaction = transaction
        if statement is not None and not log_targets(subscriptions):
            self._transaction = statement
        self._subscriptions = tuple(subscriptions)  # the access-log targets are among them
        self._batch_size = batch_size
        self._queue: list[tuple[AuditEntry, asyncio.Future[str]]] = []
        self._flusher: asyncio.Task[None] | None = None
        self._closed = False

    async def record(self, rec: AccessRecord) -> str:
        """Log ``rec``; returns the AuditEvent id once its row is committed.

        Raises :class:`AuditWriteError` when its batch could not be written.
        """
        if self._closed:
            raise AuditWriteError("the access log is closed")
        entry = audit_entry(rec)
        waiter: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._queue.append((entry, waiter))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush_all(), name="audit-flush")
        # Shielded: a caller that gives up (a client gone) must not unqueue its record.
        return await asyncio.shield(waiter)

    async def flush(self) -> None:
        """Wait until everything queued so far is written (or has failed)."""
        while self._flusher is not None and not self._flusher.done():
            await asyncio.wait({self._flusher})

    async def close(self) -> None:
        """Refuse new records and drain the queue."""
        self._closed = True
        await self.flush()

    async def _flush_all(self) -> None:
        try:
            while self._queue:
                batch = self._queue[: self._batch_size]
                del self._queue[: self._batch_size]
                await self._write(batch)
        except BaseException as stop:  # cancelled: no waiter may be left hanging
            for _, waiter in self._queue:
                _fail(waiter, stop)
            self._queue.clear()
            raise

    async def _write(self, batch: Sequence[tuple[AuditEntry, asyncio.Future[str]]]) -> None:
        try:
            async with self._transaction() as conn:
                entries = [entry for entry, _ in batch]
                await store.append(conn, entries, subscriptions=self._subscriptions)
        except BaseException as failure:
            if isinstance(failure, Exception):
                # The class only: the message of a failed INSERT repeats every row it held.
                name = type(failure).__name__
                logger.error("writing %d access log records failed: %s", len(batch), name)
            for _, waiter in batch:
                _fail(waiter, failure)
            if not isinstance(failure, Exception):
                raise
            return
        for entry, waiter in batch:
            if not waiter.done():
                waiter.set_result(entry.id)


def _fail(waiter: asyncio.Future[Any], cause: BaseException) -> None:
    # A fresh exception per waiter: one instance raised in many tasks would pile up tracebacks.
    if not waiter.done():
        error = AuditWriteError("the access could not be logged")
        error.__cause__ = cause
        waiter.set_exception(error)
