"""``Measure/kva-statistik`` and its ``$evaluate-measure``: the KVÅ statistics of a care unit
and a period as a summary MeasureReport (profile contract 2).

https://hl7.org/fhir/R4/measure-operation-evaluate-measure.html: ``periodStart`` and
``periodEnd`` (dates, both days included), ``subject`` (the care unit's ``Organization/{id}``;
without it, every unit the caller reads, summed), ``reportType`` (``summary`` only). GET takes
them as query parameters, POST as a Parameters resource. What each group counts is
:mod:`reko_fhir.store.statistics`'s: the counts searches of the same period make.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime
from functools import cache
from typing import Any

from reko_fhir.mapping import codings as c
from reko_fhir.outcomes import IssueCode, OperationOutcomeError, error
from reko_fhir.package_data import PROFILES_DIR
from reko_fhir.rest.access import Permissions
from reko_fhir.rest.messages import FhirRequest, FhirResponse
from reko_fhir.rest.searchparams import MEASURE_COUNTS
from reko_fhir.store import FhirRepository, instants
from reko_fhir.store.repository import KVA_GROUPS, Bucket, KvaCount

Json = dict[str, Any]
MEASURE_ID = "kva-statistik"
POPULATION = "http://terminology.hl7.org/CodeSystem/measure-population"
PARAMETERS = ("periodStart", "periodEnd", "subject", "reportType")


@cache
def _measure_text() -> str:
    return (PROFILES_DIR / f"Measure-{MEASURE_ID}.json").read_text(encoding="utf-8")


def measure() -> Json:
    """The Measure as shipped in the reko package (``profiles/``)."""
    loaded: Json = json.loads(_measure_text())
    return loaded


async def measure_request(
    repository: FhirRepository,
    permissions: Permissions,
    rest: list[str],
    request: FhirRequest,
    body: Json | None,
) -> FhirResponse:
    """``GET /Measure/kva-statistik`` and ``GET|POST /Measure/kva-statistik/$evaluate-measure``."""
    method = request.method.upper()
    if not rest:
        message = f"the Measure is read (Measure/{MEASURE_ID}), not searched or written here"
        raise OperationOutcomeError([error(IssueCode.NOT_SUPPORTED, message, None)], status=405)
    if rest[0] != MEASURE_ID:
        message = f"Measure/{rest[0][:64]} is not known: this server has Measure/{MEASURE_ID}"
        raise OperationOutcomeError([error(IssueCode.NOT_FOUND, message, None)], status=404)
    if rest == [MEASURE_ID] and method == "GET":
        permissions.allow("Measure", "read")
        return FhirResponse(200, measure())
    if rest == [MEASURE_ID, "$evaluate-measure"] and method in ("GET", "POST"):
        for kind in MEASURE_COUNTS:  # the counts are what searches of these types count
            permissions.allow(kind, "search-type")
        asked = _parameters(request, body if method == "POST" else None)
        return FhirResponse(200, await evaluate(repository, asked))
    message = f"{method} /Measure/{'/'.join(rest)[:80]} is not an interaction here"
    raise OperationOutcomeError([error(IssueCode.NOT_SUPPORTED, message, None)], status=405)


def _parameters(request: FhirRequest, body: Json | None) -> dict[str, str]:
    """The operation's parameters, from the query or a Parameters body; 400 for unknown ones,
    repeated ones or ones that are not strings."""
    pairs: list[tuple[str, Any]] = [(k, v) for k, v in request.query if not k.startswith("_")]
    if body is not None:
        if body.get("resourceType") != "Parameters":
            message = "POST $evaluate-measure takes a Parameters resource"
            raise _bad(message, "resourceType")
        for item in body.get("parameter") or []:
            if not isinstance(item, dict):
                raise _bad("a parameter is an object", "Parameters.parameter")
            values = [v for k, v in item.items() if k.startswith("value")]
            pairs.append((str(item.get("name")), values[0] if len(values) == 1 else None))
    asked: dict[str, str] = {}
    for name, value in pairs:
        if name not in PARAMETERS:
            raise _bad(f"$evaluate-measure takes {', '.join(PARAMETERS)}, not {name[:40]}", name)
        if name in asked or not isinstance(value, str):
            raise _bad(f"{name} is given once, as a string", name)
        asked[name] = value
    return asked


def _bad(message: str, expression: str) -> OperationOutcomeError:
    return OperationOutcomeError([error(IssueCode.VALUE, message, expression[:64])], status=400)


def _day(asked: dict[str, str], name: str) -> tuple[datetime, datetime]:
    value = asked.get(name)
    if value is None:
        raise OperationOutcomeError(
            [error(IssueCode.REQUIRED, f"$evaluate-measure needs {name}", name)], status=400
        )
    if len(value) not in (4, 7, 10):
        raise _bad(f"{name} is a date (YYYY, YYYY-MM or YYYY-MM-DD), not '{value[:40]}'", name)
    try:
        return instants(value)
    except ValueError:
        message = f"{name} is a date (YYYY, YYYY-MM or YYYY-MM-DD), not '{value[:40]}'"
        raise _bad(message, name) from None
    except OverflowError:  # the year after 9999
        raise _bad(f"{name} '{value}' is out of range", name) from None


async def evaluate(repository: FhirRepository, asked: dict[str, str]) -> Json:
    """The summary MeasureReport of ``asked`` (checked parameters)."""
    start, _ = _day(asked, "periodStart")
    _, end = _day(asked, "periodEnd")
    if end <= start:
        raise _bad("periodEnd is before periodStart", "periodEnd")
    if asked.get("reportType", "summary") != "summary":
        message = f"reportType '{asked['reportType'][:40]}' is not served: only summary"
        raise OperationOutcomeError(
            [error(IssueCode.NOT_SUPPORTED, message, "reportType")], status=400
        )
    subject = asked.get("subject")
    units = None if subject is None else frozenset({await _care_unit(repository, subject)})
    bucket = Bucket("period", start, end)
    counts = await repository.kva_counts([bucket], units)
    period = {"start": asked["periodStart"], "end": asked["periodEnd"]}
    return measure_report(counts, period, None if subject is None else {"reference": subject})


async def _care_unit(repository: FhirRepository, subject: str) -> str:
    """The HSA-id of the care unit ``Organization/{id}`` names (its partition)."""
    kind, _, rid = subject.partition("/")
    if kind != "Organization" or not rid or "/" in rid:
        raise _bad(f"subject is a care unit's Organization/{{id}}, not '{subject[:40]}'", "subject")
    try:
        organization = (await repository.read("Organization", rid)).resource
    except OperationOutcomeError:
        raise _bad(f"subject {subject[:64]} is not a known Organization", "subject") from None
    for identifier in organization.get("identifier") or []:
        if isinstance(identifier, dict) and identifier.get("system") in c.HSA_SYSTEMS:
            return str(identifier.get("value"))
    raise _bad(f"subject {subject[:64]} has no HSA-id: it is not a care unit", "subject")


def measure_report(counts: Iterable[KvaCount], period: Json, subject: Json | None = None) -> Json:
    """A summary MeasureReport (https://hl7.org/fhir/R4/measurereport.html) of ``counts``,
    summed over units and buckets: every group, zero where nothing was counted."""
    totals: dict[str, int] = defaultdict(int)
    strata: dict[str, int] = defaultdict(int)
    for row in counts:
        if row.stratum is None:
            totals[row.group] += row.count
        else:
            strata[row.stratum] += row.count
    report: Json = {
        "resourceType": "MeasureReport",
        "status": "complete",
        "type": "summary",
        "measure": c.MEASURE_KVA_STATISTIK,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "period": period,
        "group": [_group(name, totals[name], strata) for name in KVA_GROUPS],
    }
    if subject is not None:  # a Reference to the care unit
        report["subject"] = subject
        report["reporter"] = subject
    return report


def _population(count: int) -> list[Json]:
    return [{"code": c.concept(POPULATION, "measure-population"), "count": count}]


def _group(name: str, count: int, strata: dict[str, int]) -> Json:
    group: Json = {
        "code": c.concept(c.CS_MEASURE_GROUP, name),
        "population": _population(count),
    }
    if name == "gc001":
        stratifier: Json = {"code": [{"text": "reko-coordination-part"}]}
        if strata:  # FHIR has no empty arrays
            stratifier["stratum"] = [
                {"value": c.concept(c.CS_PART, part), "population": _population(n)}
                for part, n in sorted(strata.items())
            ]
        group["stratifier"] = [stratifier]
    return group
