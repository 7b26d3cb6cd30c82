"""What the consent rules read about a patient, in one query.

Before a Procedure or Communication is written the rules read the patient's Consents and
EpisodesOfCare, the performers' PractitionerRoles and the Organizations all of them name
(:mod:`reko_fhir.validation.store_rules`): three statements, each paying SQLAlchemy's and (on
PostgreSQL) a round trip's cost. One UNION ALL reads the patient's resources, the
PractitionerRoles asked for, the Organizations asked for and the Organizations those
PractitionerRoles work at (their ``organization`` read from the stored JSON); only an
Organization that a Consent names and nobody asked for needs a second look.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

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
    from reko_fhir.store.unit import stored_from_row  # noqa: PLC0415 - unit imports this

    params: dict[str, object] = {
        "types": list(types),
        "patient": patient,
        "roles": list(roles),
        "organizations": list(organizations),
    }
    in_some = in_partitions(params, partitions.visible)
    query = _query(conn.dialect, in_some=in_some)
    found: dict[str, list[Stored]] = {"a": [], "r": [], "o": []}
    for row in (await conn.execute(query, params)).all():
        found[row.part].append(stored_from_row(row))
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
    return PatientRows(
        found["a"],
        roles_found,
        [unique[key] for key in sorted(unique)],
        frozenset(organizations) | of_roles | named,
    )


_QUERIES: dict[tuple[str, bool], Select[Any]] = {}


def _query(dialect: Dialect, *, in_some: bool) -> Select[Any]:
    key = (dialect.name, in_some)
    query = _QUERIES.get(key)
    if query is None:
        query = _QUERIES[key] = _build(dialect.name, in_some=in_some)
    return query


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
    ]
    union = union_all(*parts).subquery("found")
    # The patient's resources first, newest first (as about_patient reads them).
    return select(union).order_by(union.c.part, union.c.last_updated.desc(), union.c.id)
