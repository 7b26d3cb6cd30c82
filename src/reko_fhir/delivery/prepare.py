"""A message made ready for its target: the consent gate at send time, the target's names of
what it refers to, and logical references for what it cannot resolve by id
(https://hl7.org/fhir/R4/references.html#logical). The worker runs it before a single delivery
and for every message of a batch (one read of the known names for the whole batch)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from reko_fhir.delivery.consent_gate import consent_block_reason
from reko_fhir.delivery.errors import ConsentBlockedError
from reko_fhir.delivery.worker_types import BatchTarget, Outgoing, Target
from reko_fhir.mapping.references import literal_references
from reko_fhir.outcomes import OperationOutcomeError
from reko_fhir.store import outbox
from reko_fhir.store.outbox import Message, ordering_key
from reko_fhir.store.repository import Change, Json
from reko_fhir.store.sql import SqlRepository


async def prepare(
    repository: SqlRepository,
    target: Target | BatchTarget,
    messages: Sequence[Message],
    today: date,
) -> list[Outgoing | Exception]:
    """Each message through the consent gate, with the target's names of what it refers to
    (one read for all of them) and its logical references; or why it cannot go."""
    wanted: dict[int, list[str]] = {}
    ready: list[Outgoing | Exception] = []
    external: str | None = getattr(target, "external_recipient", None)
    for message in messages:
        try:
            reason = await consent_block_reason(repository, message, external, today)
            if reason is not None:
                raise ConsentBlockedError(reason)
        except Exception as exc:  # recorded with the message, as a failed delivery
            ready.append(exc)
            continue
        ready.append(Outgoing(message, {}, {}))
        # A deletion needs the target's name of the resource itself (when it has no
        # identifier to delete by); an upsert the names of what it refers to.
        local = f"{message.resource_type}/{message.resource_id}"
        deleting = message.operation == "delete"
        wanted[message.id] = [local] if deleting else sorted(literal_references(message.payload))
    every = sorted({ref for refs in wanted.values() for ref in refs})
    known: dict[str, str] = {}
    if every:
        try:
            async with repository.transaction(writer=False) as conn:
                known = await outbox.known_references(conn, target.name, every)
        except Exception as exc:  # every message of the read fails with it
            return [item if isinstance(item, Exception) else exc for item in ready]
    receives: frozenset[str] = getattr(target, "subscribed", frozenset())
    for n, item in enumerate(ready):
        if isinstance(item, Exception):
            continue
        message, refs = item.message, wanted[item.message.id]
        names = {ref: known[ref] for ref in refs if ref in known}
        deleting = message.operation == "delete"
        unresolved = [] if deleting else [ref for ref in set(refs) if ref not in names]
        try:
            logical = await logical_references(repository, message, unresolved, receives)
        except Exception as exc:  # recorded with the message, as a failed delivery
            ready[n] = exc
            continue
        ready[n] = Outgoing(message, names, logical)
    return ready


async def logical_references(
    repository: SqlRepository, message: Message, unresolved: list[str], receives: frozenset[str]
) -> dict[str, Json]:
    """Business identifiers for references the target cannot resolve by id
    (https://hl7.org/fhir/R4/references.html#logical).

    - A resource of a type the target does not receive (``receives``; empty: every type)
      never gets there: its reference goes as a logical one, whoever it belongs to.
    - A patient's resources refer to each other in cycles (an episode names its care
      team, the team its episode); waiting for one another in the patient's queue would
      never end, so a not-yet-delivered one of the same patient goes as a logical one too.
    """
    logical: dict[str, Json] = {}
    for ref in sorted(unresolved):
        kind, rid = ref.split("/", 1)
        try:
            stored = await repository.read(kind, rid)
        except OperationOutcomeError:
            continue
        change = Change(kind, rid, stored.version, stored.resource)
        identifiers = stored.resource.get("identifier") or [None]
        same_patient = ordering_key(change) == message.ordering_key
        never_sent = bool(receives) and kind not in receives
        first = identifiers[0] if isinstance(identifiers, list) else None
        has_identifier = isinstance(first, dict) and bool(first.get("value"))
        if (same_patient or never_sent) and has_identifier:
            logical[ref] = identifiers[0]
    return logical
