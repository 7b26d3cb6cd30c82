"""The ``sick-leave-period`` extension: start, end and degree of one stretch of sick leave.

Used on EpisodeOfCare (the case's sick leave) and CarePlan.activity.detail (planned steps).
https://hl7.org/fhir/R4/extensibility.html#complex
"""

from __future__ import annotations

from typing import Any

from reko_fhir.domain import SickLeavePeriod
from reko_fhir.mapping import codings as c
from reko_fhir.mapping.fhir_reader import Element


def sick_leave_to_fhir(period: SickLeavePeriod) -> dict[str, Any]:
    parts: list[dict[str, Any]] = [{"url": "start", "valueDate": period.start.isoformat()}]
    if period.end is not None:
        parts.append({"url": "end", "valueDate": period.end.isoformat()})
    parts.append({"url": "degree", "valuePositiveInt": period.degree})
    return {"url": c.EXT_SICK_LEAVE, "extension": parts}


def sick_leave_from_fhir(ext: Element) -> SickLeavePeriod:
    start = ext.extension("start")
    degree = ext.extension("degree")
    if start is None or degree is None:
        raise ext.fail("extension", "sick-leave-period needs 'start' and 'degree'")
    end = ext.extension("end")
    value = degree.data.get("valuePositiveInt")
    if not isinstance(value, int):
        raise degree.fail("valuePositiveInt", "the degree is a positiveInt")
    return SickLeavePeriod(
        start.need_date("valueDate"), end.need_date("valueDate") if end else None, value
    )
