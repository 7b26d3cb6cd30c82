"""Search conditions as SQL (https://hl7.org/fhir/R4/search.html): one sub-select of ids per
parameter, date prefixes on instants and on stored ranges, sort values. The date functions
compare plain Python values too, so the memory repository shares their rules.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, literal, select

from reko_fhir.outcomes import IssueCode, OperationOutcomeError, error
from reko_fhir.store import index
from reko_fhir.store.repository import Search
from reko_fhir.store.schema import date_index, reference_index, resource_current, token_index


def in_partitions(column: Any, partitions: frozenset[str] | None) -> Any:
    """The care-unit condition of a query (None: every partition)."""
    if partitions is None:
        return literal(True)
    return (
        column.in_(sorted(partitions)) if len(partitions) != 1 else column == next(iter(partitions))
    )


_PREFIXES = ("eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap")


def id_condition(
    resource_type: str, name: str, value: str, partitions: frozenset[str] | None = None
) -> Any:
    """A sub-select of ids for one search parameter (https://hl7.org/fhir/R4/search.html);
    ``partitions``: where a chained parameter's Patients are looked for."""
    if name == "_id":
        return select(resource_current.c.id).where(
            resource_current.c.type == resource_type, resource_current.c.id.in_(value.split(","))
        )
    if name in index.DATE_NAMES:
        return select(date_index.c.id).where(
            date_index.c.type == resource_type,
            date_index.c.param == name,
            span_condition(date_index.c.low, date_index.c.high, value),
        )
    if name in ("subject.identifier", "patient.identifier"):
        # Chained: references whose target Patient has this identifier — a Patient the caller
        # sees. Else a unit's own resource naming another unit's Patient by id would match
        # that Patient's personnummer, and tell whose id it is.
        patients = (
            select(literal("Patient/") + token_index.c.id)
            .select_from(
                token_index.join(
                    resource_current,
                    and_(
                        resource_current.c.type == token_index.c.type,
                        resource_current.c.id == token_index.c.id,
                    ),
                )
            )
            .where(
                and_(*token_match("Patient", "identifier", value)),
                in_partitions(resource_current.c.partition, partitions),
            )
        )
        return select(reference_index.c.id).where(
            reference_index.c.type == resource_type,
            reference_index.c.param == name.split(".", maxsplit=1)[0],
            reference_index.c.target.in_(patients),
        )
    if name in ("subject", "patient", "recipient"):
        default = "Organization/" if name == "recipient" else "Patient/"
        targets = [v if "/" in v else f"{default}{v}" for v in value.split(",")]
        return select(reference_index.c.id).where(
            reference_index.c.type == resource_type,
            reference_index.c.param == name,
            reference_index.c.target.in_(targets),
        )
    return select(token_index.c.id).where(and_(*token_match(resource_type, name, value)))


def sort_value(resource_type: str, name: str, descending: bool) -> Any:
    """A resource's value of a date or token parameter to sort on: the earliest (ascending)
    or latest (descending) of its values (https://hl7.org/fhir/R4/search.html#sort)."""
    if name in index.DATE_NAMES:
        table, column = date_index, date_index.c.high if descending else date_index.c.low
    else:
        table, column = token_index, token_index.c.value
    pick = func.max(column) if descending else func.min(column)
    return (
        select(pick)
        .where(
            table.c.type == resource_type,
            table.c.id == resource_current.c.id,
            table.c.param == name,
        )
        .scalar_subquery()
    )


def by_patient(search: Search) -> bool:
    return any(name.split(".")[0] in ("subject", "patient") for name, _ in search.params)


def any_row(*where: Any) -> Any:
    """``(SELECT 1 WHERE … LIMIT 1) IS NOT NULL``: a probe per outer row through an index.

    Not EXISTS: PostgreSQL turns an EXISTS into a semi- or anti-join, and on misleading
    statistics then compares every row with every other — a unit's million ``_unit`` rows read
    for a search that matches a few hundred (1 search/s), or every pending outbox message
    with every other (29 s per claim at 10,000 pending). A scalar subquery is not flattened.
    """
    return select(literal(1)).where(*where).limit(1).scalar_subquery().is_not(None)


def token_match(resource_type: str, name: str, value: str) -> list[Any]:
    """``system|code``, ``code`` or ``system|`` (https://hl7.org/fhir/R4/search.html#token)."""
    system, bar, code = value.rpartition("|")
    match = [token_index.c.type == resource_type, token_index.c.param == name]
    if code:
        match.append(token_index.c.value == code)
    if bar:
        match.append(token_index.c.system == system)
    return match


def instant_text(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def date_condition(column: Any, value: str) -> Any:
    """``ge2025-01-01``, ``lt2025-03``…: a date search on an instant column (whole-day precision
    or finer, as given). https://hl7.org/fhir/R4/search.html#prefix"""
    prefix = value[:2] if value[:2] in _PREFIXES else "eq"
    text = value[2:] if value[:2] in _PREFIXES else value
    low, high = _range(text)
    if prefix in ("gt", "sa"):
        return column >= high
    if prefix in ("lt", "eb"):
        return column < low
    if prefix == "ge":
        return column >= low
    if prefix == "le":
        return column < high
    if prefix == "ne":
        return (column < low) | (column >= high)
    return (column >= low) & (column < high)


def _range(text: str) -> tuple[datetime, datetime]:
    try:
        return index.instants(text)
    except ValueError:
        message = f"'{text}' is not a FHIR date or dateTime"
        raise OperationOutcomeError([error(IssueCode.VALUE, message, None)], status=400) from None


def span_condition(low: Any, high: Any, value: str) -> Any:
    """Prefixes on a stored range [low, high) (https://hl7.org/fhir/R4/search.html#prefix)."""
    prefix = value[:2] if value[:2] in _PREFIXES else "eq"
    q_low, q_high = _range(value[2:] if value[:2] in _PREFIXES else value)
    if prefix in ("gt", "sa"):
        return high > q_high
    if prefix in ("lt", "eb"):
        return low < q_low
    if prefix == "ge":
        return high > q_low
    if prefix == "le":
        return low < q_high
    if prefix == "ne":
        return (low < q_low) | (high > q_high)
    return (low >= q_low) & (high <= q_high)
