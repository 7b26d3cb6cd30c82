"""Statements the write path runs on every write, built once with bind parameters.

Building a SELECT costs more Python than running it on SQLite (issue 15's profile: the reads a
write makes — consent rules, the guard's checks, the current row — spent most of their time in
SQLAlchemy's statement construction). Built once, each execution only binds its values and
finds its compiled form in the engine's cache. Partition lists are expanding parameters, so one
statement serves every caller: ``…_IN`` reads the partitions given, the plain one every one.
"""

from __future__ import annotations

from sqlalchemy import and_, bindparam, select

from reko_fhir.store.repository import MATCH_LIMIT
from reko_fhir.store.schema import reference_index, resource_current

_current = resource_current.c
_PARTITIONS = _current.partition.in_(bindparam("partitions", expanding=True))

READ = select(resource_current).where(
    _current.type == bindparam("type"), _current.id == bindparam("id")
)
READ_IN = READ.where(_PARTITIONS)

READ_CURRENT = select(resource_current).where(
    _current.type == bindparam("type"),
    _current.id.in_(bindparam("ids", expanding=True)),
    _current.deleted.is_(False),
)
READ_CURRENT_IN = READ_CURRENT.where(_PARTITIONS)

ABOUT_PATIENT = (
    select(resource_current)
    .join(
        reference_index,
        and_(reference_index.c.type == _current.type, reference_index.c.id == _current.id),
    )
    .where(
        reference_index.c.type.in_(bindparam("types", expanding=True)),
        reference_index.c.param == "patient",
        reference_index.c.target == bindparam("patient"),
        _current.deleted.is_(False),
    )
    .order_by(_current.last_updated.desc(), _current.id)
    .limit(MATCH_LIMIT)
)
ABOUT_PATIENT_IN = ABOUT_PATIENT.where(_PARTITIONS)

OWN_CURRENT = READ.where(_current.partition == bindparam("own"))
OWN_CURRENT_LOCKED = OWN_CURRENT.with_for_update()
OWN_NOT_DELETED = OWN_CURRENT.where(_current.deleted.is_(False))


def in_partitions(params: dict[str, object], partitions: frozenset[str] | None) -> bool:
    """Add ``partitions`` to ``params``; whether the ``…_IN`` statement is the one to run
    (None: every partition)."""
    if partitions is None:
        return False
    params["partitions"] = sorted(partitions)
    return True
