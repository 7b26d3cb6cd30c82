"""What the consent rules read about a patient, in one query.

Before a Procedure or Communication is written the rules read the patient's Consents and
EpisodesOfCare, the performers' PractitionerRoles and the Organizations all of them name
(:mod:`reko_fhir.validation.store_rules`): three statements, each paying SQLAlchemy's and (on
PostgreSQL) a round trip's cost. One UNION ALL reads the patient's resources, the
PractitionerRoles asked for, the Organizations asked for and the Organizations those
PractitionerRoles work at (their ``organization`` read from the stored JSON); only an
Organization that a Consent names and nobody asked for needs a second look. The same query
reads the Patient itself, which the guard then need not read again
(:meth:`reko_fhir.security.session.GuardedSession.patient_rows`).

The query is sent as the driver's SQL (``exec_driver_sql``), compiled once per dialect and
shape of its lists: SQLAlchemy's ``execute`` of this statement (its cache key, the compiled
form's lookup, the result's type processing) cost about three times what SQLite spent running
it (issue 15's profile: 0.7 ms against 0.2 ms), and it runs under the write lock.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import (
    JSON,
    Select,
    and_,
    bindparam,
    case,
    cast,
    column,
    func,
    literal_column,
    select,
    true,
    union_all,
)
from sqlalchemy.engine import Dialect

from reko_fhir.store.partition import Partitions
from reko_fhir.store.pending import FlushingConnection
from reko_fhir.store.prebuilt import ABOUT_PATIENT, ABOUT_PATIENT_IN, in_partitions
from reko_fhir.store.repository import Stored
from reko_fhir.store.schema import resource_current

_ORGANIZATION = "Organization/"


@dataclass(frozen=True, slots=True)
class PatientRows:
    """The patient's resources of the types asked (newest first, as ``about_patient``), the
    PractitionerRoles found, and the Organizations found (by id); ``looked_for`` are the
    Organization ids the query covered, found or not."""

    about: list[Stored]
    roles: list[Stored]
    organizations: list[Stored]
    looked_for: frozenset[str] = field(default_factory=frozenset)
    subject: tuple[str, Stored | None] | None = None
    """The Patient the rows are about, as a read of the current one in the same partitions
    finds it: (its id, the resource or None); None when it was not read."""


def organization_ids(references: set[str | None]) -> set[str]:
    """The ids of ``Organization/<id>`` references (the rules' reading of them)."""
    return {
        r.split("/", 1)[1]
        for r in references
        if isinstance(r, str) and r.startswith(_ORGANIZATION) and "," not in r
    }


async def patient_rows(
    conn: Any,
    partitions: Partitions,
    patient: str,
    types: tuple[str, ...],
    *,
    roles: list[str],
    organizations: list[str],
) -> PatientRows:
    """One query: :class:`PatientRows` for ``patient`` (in the partitions visible),
    PractitionerRoles ``roles`` and Organizations ``organizations`` (the directory: any
    partition). ``conn`` runs statements (an AsyncConnection or the unit's)."""
    patient_id = patient.split("/", 1)[1] if patient.startswith(_PATIENT) else None
    params: dict[str, Any] = {
        "types": list(types),
        "patient": patient,
        "patient_id": patient_id,
        "roles": list(roles),
        "organizations": list(organizations),
    }
    in_some = in_partitions(params, partitions.visible)
    found: dict[str, list[Stored]] = {"a": [], "r": [], "o": [], "p": []}
    for part, stored in await _run(conn, params, in_some=in_some):
        found[part].append(stored)
    roles_found = found["r"]
    of_roles = organization_ids(
        {(s.resource.get("organization") or {}).get("reference") for s in roles_found}
    )
    named = organization_ids(
        {
            (actor.get("reference") or {}).get("reference")
            for consent in found["a"]
            if consent.resource.get("resourceType") == "Consent"
            for actor in (consent.resource.get("provision") or {}).get("actor", [])
        }
    )
    unique = {s.id: s for s in found["o"]}
    subject = None if patient_id is None else (patient_id, next(iter(found["p"]), None))
    return PatientRows(
        found["a"],
        roles_found,
        [unique[key] for key in sorted(unique)],
        frozenset(organizations) | of_roles | named,
        subject,
    )


_PATIENT = "Patient/"
_LISTS = ("types", "roles", "organizations", "partitions")


class _Row(NamedTuple):
    """What :func:`~reko_fhir.store.unit.stored_from_row` reads of a row."""

    content: str
    version: int
    last_updated: datetime
    partition: str


@dataclass(frozen=True, slots=True)
class _Mark:
    """Stands for a parameter's value (``position``: an element of a list) while the
    statement's places are worked out."""

    name: str
    position: int | None


@dataclass(frozen=True, slots=True)
class _Prepared:
    """The query's SQL for one dialect and shape of lists, and where each value goes: a
    parameter (``(name, index)``, index None for a scalar) or a constant of the statement."""

    statement: str
    places: tuple[tuple[str | None, _Mark | Any], ...]
    positional: bool
    last_updated: Callable[[Any], Any] | None


_PREPARED: dict[tuple[object, ...], _Prepared] = {}


async def _run(conn: Any, params: dict[str, Any], *, in_some: bool) -> list[tuple[str, Stored]]:
    """The query's rows as (part, resource), on ``conn``'s transaction."""
    from reko_fhir.store.unit import stored_from_row  # noqa: PLC0415 - unit imports this

    if isinstance(conn, FlushingConnection):
        await conn.flush()  # what the unit wrote first: the rules read it too
        conn = conn.connection
    dialect: Dialect = conn.dialect
    shape = tuple(len(params[name]) if name in params else -1 for name in _LISTS)
    key = (dialect.name, dialect.paramstyle, in_some, shape)
    prepared = _PREPARED.get(key)
    if prepared is None:
        if len(_PREPARED) > 256:  # a shape per count of roles and organizations: a few
            _PREPARED.clear()
        prepared = _PREPARED[key] = _prepare(dialect, params, in_some)
    values = [
        value if not isinstance(value, _Mark) else _value(params, value)
        for _, value in prepared.places
    ]
    bound: Any = (
        tuple(values)
        if prepared.positional
        else {str(name): value for (name, _), value in zip(prepared.places, values, strict=True)}
    )
    convert = prepared.last_updated
    rows = (await conn.exec_driver_sql(prepared.statement, bound)).all()
    return [
        (
            row.part,
            stored_from_row(
                _Row(
                    row.content,
                    row.version,
                    row.last_updated if convert is None else convert(row.last_updated),
                    row.partition,
                )
            ),
        )
        for row in rows
    ]


def _value(params: dict[str, Any], mark: _Mark) -> Any:
    value = params[mark.name]
    return value if mark.position is None else value[mark.position]


def _prepare(dialect: Dialect, params: dict[str, Any], in_some: bool) -> _Prepared:
    """Compile the query with marks for values, then note where each mark landed."""
    marked = {
        name: [_Mark(name, i) for i in range(len(value))]
        if isinstance(value, list)
        else _Mark(name, None)
        for name, value in params.items()
    }
    compiled = _build(dialect.name, in_some=in_some).compile(dialect=dialect)
    state = compiled.construct_expanded_state(marked)
    positional = bool(dialect.positional)
    if positional:
        places: list[tuple[str | None, Any]] = [(None, v) for v in state.positional_parameters]
    else:
        places = list(state.parameters.items())
    kind = resource_current.c.last_updated.type.dialect_impl(dialect)
    return _Prepared(
        state.statement,
        tuple(places),
        positional,
        kind.result_processor(dialect, None),
    )


def _named_by_consents(dialect: str, about: Any) -> Select[Any]:
    """The Organization ids the patient's Consents name as ``provision.actor.reference``."""
    if dialect == "postgresql":
        actors = cast(about.c.content, JSON)["provision"]["actor"]
        # json_build_array() is []: cast("[]", JSON) would bind the JSON *string* "[]"
        listed = case((func.json_typeof(actors) == "array", actors), else_=func.json_build_array())
        actor: Any = func.json_array_elements(listed).table_valued(column("value", JSON))
        reference: Any = actor.c.value["reference"]["reference"].as_string()
    else:
        actor = func.json_each(about.c.content, "$.provision.actor").table_valued("value")
        reference = func.json_extract(actor.c.value, "$.reference.reference")
    return (
        select(func.substr(reference, len(_ORGANIZATION) + 1))
        .select_from(about.join(actor, true()))
        .where(
            about.c.type == "Consent",
            func.substr(reference, 1, len(_ORGANIZATION)) == _ORGANIZATION,
            ~reference.contains(","),
        )
    )


def _build(dialect: str, *, in_some: bool) -> Select[Any]:
    current = resource_current.c
    role = resource_current.alias("role")
    if dialect == "postgresql":  # content is text: read as JSON, -> and ->> on it
        reference: Any = cast(role.c.content, JSON)["organization"]["reference"].as_string()
    else:
        reference = func.json_extract(role.c.content, "$.organization.reference")
    the_roles = and_(
        role.c.type == "PractitionerRole",
        role.c.id.in_(bindparam("roles", expanding=True)),
        role.c.deleted.is_(False),
    )
    # The rules' reading of a reference: "Organization/<id>", no comma (organization_ids).
    worked_at = select(func.substr(reference, len(_ORGANIZATION) + 1)).where(
        the_roles,
        func.substr(reference, 1, len(_ORGANIZATION)) == _ORGANIZATION,
        ~reference.contains(","),
    )
    directory = select(resource_current).where(current.deleted.is_(False))
    roles = directory.where(
        current.type == "PractitionerRole",
        current.id.in_(bindparam("roles", expanding=True)),
    )
    about = (ABOUT_PATIENT_IN if in_some else ABOUT_PATIENT).cte("about")
    # The Patient itself, as the guard reads it (read_current: the partitions visible).
    subject = directory.where(current.type == "Patient", current.id == bindparam("patient_id"))
    if in_some:
        subject = subject.where(current.partition.in_(bindparam("partitions", expanding=True)))
    # Three looks, not one with OR: each finds its rows by primary key (an OR of the three
    # made SQLite walk every Organization).
    looks: tuple[Any, ...] = (
        bindparam("organizations", expanding=True),
        worked_at,
        _named_by_consents(dialect, about),
    )
    organizations = [
        directory.where(current.type == "Organization", current.id.in_(ids)) for ids in looks
    ]
    parts = [
        select(*about.c, literal_column("'a'").label("part")),
        select(*roles.subquery("roles").c, literal_column("'r'").label("part")),
        *(
            select(*look.subquery(f"organizations_{n}").c, literal_column("'o'").label("part"))
            for n, look in enumerate(organizations)
        ),
        select(*subject.subquery("subject").c, literal_column("'p'").label("part")),
    ]
    union = union_all(*parts).subquery("found")
    # The patient's resources first, newest first (as about_patient reads them).
    return select(union).order_by(union.c.part, union.c.last_updated.desc(), union.c.id)
