"""Paging of searchsets: the control parameters, ``_count``/``_offset``, and the page links."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from reko_fhir.outcomes import IssueCode, OperationOutcomeError, error

Json = dict[str, Any]
CONTROL = frozenset(
    {"_format", "_count", "_offset", "_sort", "_summary", "_pretty", "_include", "_total"}
)
TOTALS = frozenset({"none", "estimate", "accurate"})
"""``_total`` (https://hl7.org/fhir/R4/search.html#total): without it, or with ``estimate``, a
search counts its matches up to :data:`reko_fhir.store.unit.COUNT_LIMIT` and leaves ``total``
out beyond; ``accurate`` counts them all, however long it takes; ``none`` counts nothing."""


def includes_of(kind: str) -> list[str]:
    """The ``_include`` values a search of ``kind`` serves: the patient its matches name."""
    return [f"{kind}:patient", f"{kind}:subject"]


def number(text: str | None, default: int, most: int) -> int:
    """``_count`` or ``_offset``: a whole number, capped at ``most``."""
    if text is None:
        return default
    if not text.isdigit():
        raise OperationOutcomeError(
            [error(IssueCode.VALUE, f"'{text}' is not a whole number", None)], status=400
        )
    return min(int(text), most)


def page_links(
    kind: str,
    query: tuple[tuple[str, str], ...],
    offset: int,
    count: int,
    total: int | None,
    *,
    shown: int = 0,
) -> list[Json]:
    """self/next/previous links of a searchset page (https://hl7.org/fhir/R4/http.html#paging);
    without a total, a full page (``shown`` == ``count``) has a next one."""

    def url(at: int) -> str:
        kept = [(k, v) for k, v in query if k not in ("_offset", "_count")]
        return f"{kind}?{urlencode([*kept, ('_count', str(count)), ('_offset', str(at))])}"

    links = [{"relation": "self", "url": url(offset)}]
    if (offset + count < total) if total is not None else shown == count:
        links.append({"relation": "next", "url": url(offset + count)})
    if offset > 0:
        links.append({"relation": "previous", "url": url(max(0, offset - count))})
    return links
