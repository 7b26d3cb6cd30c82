"""Search values of a resource: the token and reference index rows written beside it.

Only the parameters the store searches on are indexed (https://hl7.org/fhir/R4/search.html):
``identifier``, ``status``, ``code`` and ``category`` as tokens; ``subject`` and ``patient``
as references (a Procedure's ``subject`` answers ``patient`` too, as in the R4 definitions).
A worklist Task's ``for`` answers ``subject`` and ``patient``, its ``owner`` ``owner``; its
sick leave's start and length (in ``input``) are the custom ``sick-leave-start`` (date) and
``sick-leave-length`` (number), so the worklist sorts on them;
a CarePlan's ``activity-code`` and ``activity-date`` (its activities' KVÅ codes and schedules,
https://hl7.org/fhir/R4/careplan.html#search).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

Json = dict[str, Any]
REFERENCE_PARAMS = {
    "subject": ("subject", "patient"),
    "patient": ("patient",),
    "recipient": ("recipient",),  # Communication: whom a notice went to (an external actor)
    "for": ("subject", "patient"),  # Task (https://hl7.org/fhir/R4/task.html#search)
    "owner": ("owner",),
}
# The R4 date parameters of the resources the store serves: (param, element).
DATE_PARAMS = {
    "Procedure": (("date", "performedDateTime"), ("date", "performedPeriod")),
    "EpisodeOfCare": (("date", "period"),),
    "CarePlan": (("date", "period"), ("activity-date", "activity.detail.scheduled")),
    "Consent": (("date", "dateTime"),),
    "Communication": (("sent", "sent"),),
}
# Values of a Task's ``input`` (by its reko-task-input code) indexed as custom parameters.
TASK_INPUT_SYSTEM = "http://reko-fhir.se/fhir/CodeSystem/reko-task-input"
TASK_DATE_INPUTS = {"sick-leave-start": ("sjukfall-start", "valueDate")}
TASK_NUMBER_INPUTS = {"sick-leave-length": ("sjukfall-dagar", "valueInteger")}
DATE_NAMES = frozenset(param for pairs in DATE_PARAMS.values() for param, _ in pairs) | frozenset(
    TASK_DATE_INPUTS
)
"""Every date search parameter the store indexes (``date_index``)."""
NUMBER_NAMES = frozenset(TASK_NUMBER_INPUTS)
"""Every number search parameter the store indexes (``number_index``)."""
FAR_FUTURE = datetime(9999, 12, 31, tzinfo=UTC)


def _codings(value: Any) -> Iterator[tuple[str, str]]:
    items = value if isinstance(value, list) else [value]
    for item in items:
        if isinstance(item, dict):
            for coding in item.get("coding", []):
                if isinstance(coding, dict) and isinstance(coding.get("code"), str):
                    yield str(coding.get("system", "")), coding["code"]


def tokens(resource: Json) -> Iterator[tuple[str, str, str]]:
    """(param, system, value) rows."""
    for ident in (
        resource.get("identifier", []) if isinstance(resource.get("identifier"), list) else []
    ):
        if isinstance(ident, dict) and isinstance(ident.get("value"), str):
            yield "identifier", str(ident.get("system", "")), ident["value"]
    if isinstance(resource.get("status"), str):
        yield "status", "", resource["status"]
    for param in ("code", "category"):
        for system, code in _codings(resource.get(param)):
            yield param, system, code
    if resource.get("resourceType") == "CarePlan":
        for detail in _details(resource):
            for system, code in _codings(detail.get("code")):
                yield "activity-code", system, code


def _details(careplan: Json) -> Iterator[Json]:
    """Each ``CarePlan.activity.detail``."""
    activities = careplan.get("activity")
    for activity in activities if isinstance(activities, list) else []:
        detail = activity.get("detail") if isinstance(activity, dict) else None
        if isinstance(detail, dict):
            yield detail


def references(resource: Json) -> Iterator[tuple[str, str]]:
    """(param, target) rows, targets as written (``Patient/123``), each once: a search naming
    one target then finds a resource in one row (its count and page are the index's)."""
    seen: set[tuple[str, str]] = set()
    for element, params in REFERENCE_PARAMS.items():
        value = resource.get(element)
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, dict) and isinstance(item.get("reference"), str):
                for param in params:
                    if (param, item["reference"]) not in seen:
                        seen.add((param, item["reference"]))
                        yield param, item["reference"]


# Where each type names the organisations and staff (PractitionerRole) it belongs to.
UNIT_ELEMENTS: dict[str, tuple[tuple[str, ...], ...]] = {
    "Patient": (("managingOrganization",), ("generalPractitioner",)),
    "Consent": (("organization",), ("performer",)),
    "EpisodeOfCare": (("managingOrganization",), ("careManager",)),
    "CarePlan": (("author",), ("contributor",), ("activity", "detail", "performer")),
    "Procedure": (("performer", "actor"), ("performer", "onBehalfOf"), ("recorder",)),
    "CareTeam": (("managingOrganization",), ("participant", "member")),
    "Communication": (("sender",), ("recipient",)),
    "Provenance": (("agent", "who"), ("agent", "onBehalfOf")),
    "PractitionerRole": (("organization",),),
    "Task": (("owner",),),
}
_UNIT_TYPES = ("Organization/", "PractitionerRole/")


def unit_references(resource: Json) -> set[str]:
    """``Organization/…`` and ``PractitionerRole/…`` references naming who holds the resource."""
    found: set[str] = set()
    for path in UNIT_ELEMENTS.get(str(resource.get("resourceType")), ()):
        level: list[Any] = [resource]
        for step in path:
            level = [
                child
                for node in level
                if isinstance(node, dict)
                for child in (
                    node.get(step, []) if isinstance(node.get(step), list) else [node.get(step)]
                )
            ]
        for node in level:
            ref = node.get("reference") if isinstance(node, dict) else None
            if isinstance(ref, str) and ref.startswith(_UNIT_TYPES) and ref.count("/") == 1:
                found.add(ref)
    return found


def instants(text: str) -> tuple[datetime, datetime]:
    """The instants a FHIR date/dateTime covers: [low, high). ValueError when it is none."""
    # An offset's '+' sent unencoded in a URL arrives as a space.
    text = re.sub(r"(T[0-9:.]+) ([0-9]{2}:[0-9]{2})$", r"\1+\2", text)
    if len(text) == 4:
        low = datetime(int(text), 1, 1, tzinfo=UTC)
        return low, low.replace(year=low.year + 1)
    if len(text) == 7:
        low = datetime(int(text[:4]), int(text[5:7]), 1, tzinfo=UTC)
        high = (
            low.replace(year=low.year + 1, month=1)
            if low.month == 12
            else low.replace(month=low.month + 1)
        )
        return low, high
    if len(text) == 10:
        low = datetime.fromisoformat(text).replace(tzinfo=UTC)
        return low, low + timedelta(days=1)
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    moment = (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)
    return moment, moment + timedelta(seconds=1)


def dates(resource: Json) -> Iterator[tuple[str, datetime, datetime]]:
    """(param, low, high) rows; a Period without end reaches into the far future."""
    for param, element in DATE_PARAMS.get(str(resource.get("resourceType")), ()):
        nested = element == "activity.detail.scheduled"
        for value in _scheduled(resource) if nested else [resource.get(element)]:
            try:
                if isinstance(value, str):
                    yield (param, *instants(value))
                elif isinstance(value, dict) and isinstance(value.get("start"), str):
                    low = instants(value["start"])[0]
                    end = value.get("end")
                    yield param, low, instants(end)[1] if isinstance(end, str) else FAR_FUTURE
            except ValueError:
                continue  # validation reports malformed dates; the index leaves them out

    yield from _task_dates(resource)


def _task_input(resource: Json, code: str, element: str) -> Iterator[Any]:
    if resource.get("resourceType") != "Task" or not isinstance(resource.get("input"), list):
        return
    for item in resource["input"]:
        if isinstance(item, dict) and (TASK_INPUT_SYSTEM, code) in set(_codings(item.get("type"))):
            yield item.get(element)


def _task_dates(resource: Json) -> Iterator[tuple[str, datetime, datetime]]:
    for param, (code, element) in TASK_DATE_INPUTS.items():
        for value in _task_input(resource, code, element):
            try:
                if isinstance(value, str):
                    yield (param, *instants(value))
            except ValueError:
                continue


def numbers(resource: Json) -> Iterator[tuple[str, int]]:
    """(param, value) rows of the number parameters (whole numbers: a sick leave's days)."""
    for param, (code, element) in TASK_NUMBER_INPUTS.items():
        for value in _task_input(resource, code, element):
            if isinstance(value, int) and not isinstance(value, bool) and abs(value) < 2**62:
                yield param, value


def _scheduled(careplan: Json) -> list[Any]:
    """The dates and Periods of ``activity.detail.scheduled[x]``: a Period, or a Timing's
    ``event`` dateTimes and ``repeat.boundsPeriod``; a ``scheduledString`` is no date
    (https://hl7.org/fhir/R4/datatypes.html#Timing)."""
    found: list[Any] = []
    for detail in _details(careplan):
        found.append(detail.get("scheduledPeriod"))
        timing = detail.get("scheduledTiming")
        if isinstance(timing, dict):
            events = timing.get("event")
            found += events if isinstance(events, list) else []
            repeat = timing.get("repeat")
            found.append(repeat.get("boundsPeriod") if isinstance(repeat, dict) else None)
    return found
