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
    base: str = "",
) -> list[Json]:
    """self/next/previous links of a searchset page (https://hl7.org/fhir/R4/http.html#paging),
    absolute from ``base`` (the service's base URL) when given; ``query`` holds only the
    parameters applied. Without a total, a full page (``shown`` == ``count``) has a next one;
    ``_count=0`` asks for no page at all, so it has none."""

    def url(at: int) -> str:
        kept = [(k, v) for k, v in query if k not in ("_offset", "_count")]
        search = urlencode([*kept, ("_count", str(count)), ("_offset", str(at))])
        return f"{base}/{kind}?{search}" if base else f"{kind}?{search}"

    links = [{"relation": "self", "url": url(offset)}]
    more = (offset + count < total) if total is not None else shown == count
    if count > 0 and more:
        links.append({"relation": "next", "url": url(offset + count)})
    if offset > 0:
        links.append({"relation": "previous", "url": url(max(0, offset - count))})
    return links
