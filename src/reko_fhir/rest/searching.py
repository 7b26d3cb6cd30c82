"""A search request read against the tables of :mod:`reko_fhir.rest.searchparams`: which
parameters apply, which are refused, and the result parameters.

An unknown or unsupported parameter (a name the type does not serve, or any modifier) answers
400 with an OperationOutcome naming it, as HAPI does by default; with ``Prefer:
handling=lenient`` it is ignored instead, named in an ``outcome`` entry, and left out of the
self link, which lists only what was applied (https://hl7.org/fhir/R4/search.html#errors).
"""

from __future__ import annotations

from dataclasses import dataclass

from reko_fhir.outcomes import IssueCode, OperationOutcomeError, error
from reko_fhir.rest.inputs import shown
from reko_fhir.rest.messages import FhirRequest
from reko_fhir.rest.paging import CONTROL, number
from reko_fhir.rest.searchparams import applies, sort_keys

Pairs = tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class SearchRequest:
    params: Pairs
    """The search parameters applied."""
    applied: Pairs
    """What the self link repeats: the applied parameters and result parameters."""
    ignored: tuple[str, ...]
    count: int
    offset: int
    sort: tuple[str, ...]
    includes: tuple[str, ...]
    total: str
    summary_count: bool


def lenient(request: FhirRequest) -> bool:
    """``Prefer: handling=lenient`` (https://hl7.org/fhir/R4/http.html#prefer)."""
    return "handling=lenient" in (request.header("prefer") or "").replace(" ", "")


def search_request(kind: str, request: FhirRequest) -> SearchRequest:
    """The search ``request`` asks of ``kind``; OperationOutcomeError 400 for what is not
    served (unless lenient)."""
    params: list[tuple[str, str]] = []
    applied: list[tuple[str, str]] = []
    unknown: list[str] = []
    sort: list[str] = []
    for name, value in request.query:
        if name == "_sort":
            keys = [k for k in value.split(",") if k]
            served = [k for k in keys if k.lstrip("-") in sort_keys(kind)]
            unknown += [f"_sort={k}" for k in keys if k not in served]
            sort += served
            if served:
                applied.append((name, ",".join(served)))
        elif name in CONTROL:
            applied.append((name, value))
        elif applies(kind, name):
            params.append((name, value))
            applied.append((name, value))
        else:
            unknown.append(name)
    if unknown and not lenient(request):
        sortable = ", ".join(sort_keys(kind))
        raise OperationOutcomeError(
            [
                error(
                    IssueCode.NOT_SUPPORTED,
                    f"_sort takes {sortable} here, not {shown(name[6:])}"
                    if name.startswith("_sort=")
                    else f"the search parameter '{shown(name)}' is not supported for {kind}",
                    "_sort" if name.startswith("_sort=") else shown(name),
                )
                for name in unknown
            ],
            status=400,
        )
    return SearchRequest(
        params=tuple(params),
        applied=tuple(applied),
        ignored=tuple(shown(n) for n in unknown),
        count=number(request.param("_count"), 50, 1000),
        offset=number(request.param("_offset"), 0, 10**9),
        sort=tuple(sort),
        includes=tuple(v for k, v in request.query if k == "_include"),
        total=request.param("_total") or "estimate",
        summary_count=request.param("_summary") == "count",
    )
