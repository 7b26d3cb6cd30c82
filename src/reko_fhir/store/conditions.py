"""Search conditions as SQL (https://hl7.org/fhir/R4/search.html): one sub-select of ids per
parameter, date prefixes on instants and on stored ranges, sort values. The date functions
compare plain Python values too, so the memory repository shares their rules.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, func, literal, select

from reko_fhir.outcomes import IssueCode, OperationOutcomeError, error
from reko_fhir.store import index
from reko_fhir.store.repository import SEARCHABLE, Json, Search
from reko_fhir.store.schema import (
    date_index,
    number_index,
    reference_index,
    resource_current,
    token_index,
)


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
    if name in index.NUMBER_NAMES:
        return select(number_index.c.id).where(
            number_index.c.type == resource_type,
            number_index.c.param == name,
            number_condition(number_index.c.value, value),
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
    if name in ("subject", "patient", "recipient", "owner"):
        default = "Organization/" if name in ("recipient", "owner") else "Patient/"
        targets = [v if "/" in v else f"{default}{v}" for v in value.split(",")]
        return select(reference_index.c.id).where(
            reference_index.c.type == resource_type,
            reference_index.c.param == name,
            reference_index.c.target.in_(targets),
        )
    return select(token_index.c.id).where(and_(*token_match(resource_type, name, value)))


def sort_value(resource_type: str, name: str, descending: bool) -> Any:
    """A resource's value of a date, number or token parameter to sort on: the earliest
    (ascending) or latest (descending) of its values (https://hl7.org/fhir/R4/search.html#sort)."""
    table: Any
    if name in index.DATE_NAMES:
        table, column = date_index, date_index.c.high if descending else date_index.c.low
    elif name in index.NUMBER_NAMES:
        table, column = number_index, number_index.c.value
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


def number_value(value: str) -> tuple[str, int]:
    """``prefix`` and whole number of a number search (https://hl7.org/fhir/R4/search.html#number);
    400 when it is none."""
    prefix = value[:2] if value[:2] in _PREFIXES else "eq"
    text = value[2:] if value[:2] in _PREFIXES else value
    if prefix in ("sa", "eb", "ap") or not text.lstrip("-").isdigit() or len(text) > 18:
        message = f"'{value[:40]}' is not a whole number with an optional eq/ne/gt/lt/ge/le prefix"
        raise OperationOutcomeError([error(IssueCode.VALUE, message, None)], status=400)
    return prefix, int(text)


def number_condition(column: Any, value: str) -> Any:
    """A number search on a whole-number column (also on plain ints: the memory store's)."""
    prefix, number = number_value(value)
    if prefix == "gt":
        return column > number
    if prefix == "lt":
        return column < number
    if prefix == "ge":
        return column >= number
    if prefix == "le":
        return column <= number
    if prefix == "ne":
        return column != number
    return column == number


# -- conditions of a whole transaction, matched at once ------------------------------------
_NOT_TOKENS = frozenset(
    {"_id", "_lastUpdated", "subject.identifier", "patient.identifier"}
    | set(index.REFERENCE_PARAMS)
    | index.DATE_NAMES
    | index.NUMBER_NAMES
)


def token_of(condition: Search) -> tuple[str, str | None, str] | None:
    """``(param, system, code)`` of a condition that is one token parameter with a code
    (``identifier=system|code`` or ``identifier=code``: system None) — what a case Bundle's
    conditional entries are — else None (matched one by one, as any search)."""
    if len(condition.params) != 1:
        return None
    name, value = condition.params[0]
    if name not in SEARCHABLE or name in _NOT_TOKENS:
        return None
    system, bar, code = value.rpartition("|")
    if not code:
        return None
    return name, system if bar else None, code


def token_matches(token: tuple[str, str | None, str], param: str, system: str, value: str) -> bool:
    """Whether one token row ``(param, system, value)`` answers ``token`` (as
    :func:`token_match` decides in SQL)."""
    name, wanted_system, code = token
    return param == name and value == code and (wanted_system is None or system == wanted_system)


def content_matches(token: tuple[str, str | None, str], content: Json | None) -> bool:
    """Whether a resource (as written, None for a deletion) has a token row answering ``token``:
    the rows :func:`reko_fhir.store.index.tokens` writes for it."""
    return content is not None and any(token_matches(token, *row) for row in index.tokens(content))


MATCH_TOKENS = (
    select(
        token_index.c.type,
        token_index.c.param,
        token_index.c.system,
        token_index.c.value,
        resource_current.c.id,
        resource_current.c.version,
        resource_current.c.last_updated,
        resource_current.c.deleted,
        resource_current.c.content,
        resource_current.c.partition,
    )
    .join(
        resource_current,
        and_(
            resource_current.c.type == token_index.c.type,
            resource_current.c.id == token_index.c.id,
        ),
    )
    .where(
        token_index.c.type.in_(bindparam("types", expanding=True)),
        token_index.c.param.in_(bindparam("params", expanding=True)),
        token_index.c.value.in_(bindparam("values", expanding=True)),
        resource_current.c.partition == bindparam("own"),
        resource_current.c.deleted.is_(False),
    )
    .limit(bindparam("most"))
)
"""The current resources of the own partition with any of the token values of a
transaction's conditions: every condition of one token parameter in one query (through
``ix_token_lookup``, as each alone), sorted out per condition by :func:`token_matches`. A few
rows more than the conditions' matches (another type or system with the same value) are
dropped there; at ``most`` rows the answer is incomplete and each condition is matched alone."""
