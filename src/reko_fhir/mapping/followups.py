"""A plan's follow-ups as FHIR: which planned activities are still due, and which one a performed
Procedure carries out (https://hl7.org/fhir/R4/careplan.html, ``CarePlan.activity``).

A *follow-up* here is a planned activity a coordinator carries out and documents as a Procedure:
KVÅ AW026 (the plan's follow-up) and GC001 (a planned coordination activity). A DV077 detail is
a planned sick-leave step, not an occasion anybody performs, and is left out.

The link (https://hl7.org/fhir/R4/procedure-definitions.html#Procedure.basedOn,
https://hl7.org/fhir/R4/careplan-definitions.html#CarePlan.activity.outcomeReference): a
completed Procedure whose ``basedOn`` names the CarePlan carries out one open activity of the
same KVÅ code — the one already naming it in ``outcomeReference`` if any (a client's explicit
pointer: R4 has no reference from a Procedure to one activity of a plan), else the earliest
scheduled (activities without a date last, then in the plan's order); a GC001 activity of
another coordination part than the Procedure's category is not its. That activity's
``outcomeReference`` names the Procedure and its ``detail.status`` becomes ``completed``.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from reko_fhir.domain import KvaCode
from reko_fhir.mapping import codings as c

Json = dict[str, Any]
FOLLOW_UP_CODES = frozenset({KvaCode.AW026.value, KvaCode.GC001.value})
CLOSED = frozenset({"completed", "cancelled", "stopped", "entered-in-error"})
"""Activity statuses that are not due any more
(https://hl7.org/fhir/R4/valueset-care-plan-activity-status.html)."""


@dataclass(frozen=True, slots=True)
class DueActivity:
    """One open follow-up of a plan: its position in ``CarePlan.activity`` and when it is due."""

    index: int
    code: str
    status: str
    due: date | None
    description: str | None


def kva_code(concept: Any) -> str | None:
    """The KVÅ code of a CodeableConcept (AW026, GC001, DV077), or None."""
    for coding in concept.get("coding", []) if isinstance(concept, dict) else []:
        if isinstance(coding, dict) and coding.get("system") == c.KVA:
            code = coding.get("code")
            return code if isinstance(code, str) else None
    return None


def _part(concept: Any) -> str | None:
    """The coordination part a CodeableConcept codes (``category`` of a Procedure)."""
    for coding in concept.get("coding", []) if isinstance(concept, dict) else []:
        if isinstance(coding, dict) and coding.get("system") == c.CS_PART:
            code = coding.get("code")
            return code if isinstance(code, str) else None
    return None


def _detail_part(detail: Json) -> str | None:
    for ext in detail.get("extension") or []:
        if isinstance(ext, dict) and ext.get("url") == c.EXT_COORDINATION_PART:
            return _part({"coding": [ext.get("valueCoding")]})
    return None


def due_date(detail: Json) -> date | None:
    """The first day an activity is scheduled on: a Period's start, a Timing's earliest event
    or ``repeat.boundsPeriod`` start; None for a ``scheduledString`` or no schedule."""
    # Not validated yet when a transaction's plan is linked: every step checks its shape.
    found: list[Any] = [_child(detail.get("scheduledPeriod"), "start")]
    timing = detail.get("scheduledTiming")
    if isinstance(timing, dict):
        events = timing.get("event")
        found += events if isinstance(events, list) else []
        found.append(_child(_child(timing.get("repeat"), "boundsPeriod"), "start"))
    days = [_day(text) for text in found if isinstance(text, str)]
    known = [d for d in days if d is not None]
    return min(known) if known else None


def _child(node: Any, name: str) -> Any:
    return node.get(name) if isinstance(node, dict) else None


def _day(text: str) -> date | None:
    try:
        if len(text) == 4:
            return date(int(text), 1, 1)
        if len(text) == 7:
            return date(int(text[:4]), int(text[5:7]), 1)
        return datetime.fromisoformat(text.replace("Z", "+00:00")).date()
    except ValueError:
        return None


def _activities(careplan: Json) -> Iterator[tuple[int, Json, Json]]:
    """(index, activity, detail) of each activity with a detail."""
    for i, activity in enumerate(careplan.get("activity") or []):
        detail = activity.get("detail") if isinstance(activity, dict) else None
        if isinstance(detail, dict):
            yield i, activity, detail


def due_activities(careplan: Json) -> list[DueActivity]:
    """The plan's open AW026 and GC001 activities, earliest due first (undated last)."""
    due = [
        DueActivity(
            i,
            code,
            str(detail.get("status", "")),
            due_date(detail),
            detail.get("description") if isinstance(detail.get("description"), str) else None,
        )
        for i, _, detail in _activities(careplan)
        if (code := kva_code(detail.get("code"))) in FOLLOW_UP_CODES
        and detail.get("status") not in CLOSED
    ]
    return sorted(due, key=lambda d: (d.due is None, d.due or date.min, d.index))


def _names(activity: Json, reference: str) -> bool:
    return any(
        isinstance(ref, dict) and ref.get("reference") == reference
        for ref in activity.get("outcomeReference") or []
    )


def carried_out(careplan: Json, procedure: Json, reference: str) -> Json | None:
    """The plan with the activity ``procedure`` (stored as ``reference``, ``Procedure/<id>``)
    carries out completed and naming it; None when nothing changes (no open activity of its
    code, it is not a completed AW026 or GC001, or the link is there already)."""
    code = kva_code(procedure.get("code"))
    if procedure.get("status") != "completed" or code not in FOLLOW_UP_CODES:
        return None
    plan = copy.deepcopy(careplan)
    for _, activity, detail in _activities(plan):
        if _names(activity, reference):  # linked already, or the client's explicit pointer
            if detail.get("status") == "completed":
                return None
            detail["status"] = "completed"
            return plan
    part = _part(procedure.get("category"))
    candidates = [
        due
        for due in due_activities(plan)
        if due.code == code
        and (part is None or _detail_part(plan["activity"][due.index]["detail"]) in (None, part))
    ]
    if not candidates:
        return None
    activity = plan["activity"][candidates[0].index]
    earlier = activity.get("outcomeReference")
    activity["outcomeReference"] = [
        *(earlier if isinstance(earlier, list) else []),
        {"reference": reference},
    ]
    activity["detail"]["status"] = "completed"
    return plan
