"""The SELECTs of a search (https://hl7.org/fhir/R4/search.html), as one caller sees the store.

:class:`~reko_fhir.store.unit.Unit` runs them. Every query carries the caller's partitions
(:mod:`reko_fhir.store.partition`): results and counts alike. A search naming one Patient is
answered from ``reference_index`` where it can (:meth:`SearchQueries.by_reference`): its rows
carry their resource's partition and ``last_updated``, so the care-unit filter, the count and
the newest-first order need no look-up of ``resource_current`` per match.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import Integer, and_, bindparam, func, select

from reko_fhir.store.conditions import (
    by_patient,
    date_condition,
    id_condition,
    in_partitions,
    sort_value,
)
from reko_fhir.store.partition import Partitions
from reko_fhir.store.prebuilt import in_partitions as with_partitions
from reko_fhir.store.repository import Search, require_searchable, writes_to
from reko_fhir.store.schema import reference_index, resource_current

# The patient's reference parameters: a patient's matches are few enough to sort them all, as
# the general path does too (see :meth:`SearchQueries.order`). A unit's Communications to one
# Organization may be a million: their newest-first page walks ix_current_partition and stops
# early instead.
_PATIENT_NAMES = frozenset({"subject", "patient"})


@dataclass(frozen=True, slots=True)
class SearchQueries:
    """Queries for a caller reading ``partitions``; ``own=True`` methods look in the one it
    writes to instead (conditions)."""

    partitions: Partitions

    def _reads(self, resource_type: str, own: bool) -> frozenset[str] | None:
        return (
            frozenset({writes_to(self.partitions)}) if own else self.partitions.reads(resource_type)
        )

    def filtered(self, resource_type: str, search: Search, *, own: bool = False) -> Any:
        """SELECT of the current, not deleted resources matching every parameter, in the
        partitions the caller reads (``own``: in the one it writes to, for conditions)."""
        query = select(resource_current).where(
            resource_current.c.type == resource_type,
            resource_current.c.deleted.is_(False),
            in_partitions(resource_current.c.partition, self._reads(resource_type, own)),
        )
        return self._narrowed(query, resource_type, search, resource_current, own=own)

    def _narrowed(
        self, query: Any, resource_type: str, search: Search, rows: Any, *, own: bool
    ) -> Any:
        """``query`` on ``rows`` (resource_current or reference_index: each has ``id`` and
        ``last_updated``) with every parameter of ``search`` as a condition."""
        patients = self._reads("Patient", own)
        for name, value in search.params:
            require_searchable(resource_type, name)
            if name == "_lastUpdated":
                query = query.where(date_condition(rows.c.last_updated, value))
            else:
                query = query.where(
                    rows.c.id.in_(id_condition(resource_type, name, value, patients))
                )
        return query

    def by_reference(self, resource_type: str, search: Search, *, own: bool = False) -> Any:
        """SELECT of the ``reference_index`` ids of the matches, when ``search`` names one
        Patient (``patient=Patient/1``, ``subject=1``) and sorts by ``_lastUpdated`` or ``_id``
        only; else None.

        Those rows carry their resource's partition and ``last_updated``, and exist only for
        current, not deleted versions (``Unit._unindex``), once per resource and target
        (:func:`~reko_fhir.store.index.references`): the care-unit filter, the count and the
        newest-first order are read from ``ix_reference_lookup`` alone. Going through
        ``resource_current`` cost a primary-key look-up per match (1,100 matches: 14 ms).
        """
        for name, _ in search.params:  # the first one no store serves is the 400's
            require_searchable(resource_type, name)
        driver = next(
            (
                (name, value)
                for name, value in search.params
                if name in _PATIENT_NAMES and "," not in value
            ),
            None,
        )
        if driver is None or any(
            key.lstrip("-") not in ("_id", "_lastUpdated") for key in search.sort
        ):
            return None
        name, value = driver
        rows = reference_index
        query = select(rows.c.id).where(
            rows.c.type == resource_type,
            rows.c.param == name,
            rows.c.target == (value if "/" in value else f"Patient/{value}"),
            in_partitions(rows.c.partition, self._reads(resource_type, own)),
        )
        others = replace(search, params=tuple(p for p in search.params if p != driver))
        return self._narrowed(query, resource_type, others, rows, own=own)

    def ids(self, resource_type: str, search: Search, *, own: bool = False) -> Any:
        """SELECT of the matches' ids (from the reference index where it can)."""
        by_reference = self.by_reference(resource_type, search, own=own)
        if by_reference is not None:
            return by_reference
        return self.filtered(resource_type, search, own=own).with_only_columns(
            resource_current.c.id
        )

    def page(
        self, resource_type: str, search: Search, *, counted: bool = False
    ) -> tuple[Any, dict[str, object]]:
        """One page, and its parameters: ``search.count`` from ``search.offset``, in
        ``search.sort``; ``counted`` (a patient's search only): with the number of every match
        last (``total``)."""
        prebuilt = self._patient_page(resource_type, search, counted=counted)
        if prebuilt is not None:
            return prebuilt
        by_reference = self.by_reference(resource_type, search)
        if by_reference is not None:
            page = _indexed(by_reference, resource_type, search.sort, search.count, search.offset)
            return page(counted=counted), {}
        if counted:
            return self._counted_page(resource_type, search), {}
        query = (
            self.filtered(resource_type, search)
            .order_by(*self.order(resource_type, search))
            .limit(search.count)
            .offset(search.offset)
        )
        return query, {}

    def _patient_page(
        self, resource_type: str, search: Search, *, counted: bool
    ) -> tuple[Any, dict[str, object]] | None:
        """The prebuilt statement of the commonest search, one Patient newest first (building
        its SELECT cost more Python than SQLite took to run it)."""
        if len(search.params) != 1 or search.sort not in ((), ("-_lastUpdated",)):
            return None
        name, value = search.params[0]
        if name not in _PATIENT_NAMES or "," in value:
            return None
        params: dict[str, object] = {
            "type": resource_type,
            "param": name,
            "target": value if "/" in value else f"Patient/{value}",
            "count": search.count,
            "offset": search.offset,
        }
        in_some = with_partitions(params, self.partitions.reads(resource_type))
        return _PATIENT_PAGES[(in_some, counted)], params

    def order(self, resource_type: str, search: Search) -> list[Any]:
        """The ORDER BY of ``search.sort`` (newest first when none), ties broken by id."""
        order = []
        # A patient's matches are few and may be the oldest rows of their type: find them
        # first, then sort just them. Ordered on the bare column, the database may instead walk
        # ix_current_last_updated through every row of the type until 20 match (measured at
        # 1,000,000 Procedures: 51 s on PostgreSQL, over 1 s on SQLite). COALESCE(x, x) sorts
        # the same but no index serves it; the cost is bounded by the matches, which
        # ``total`` counts anyway.
        patients_first = by_patient(search)
        updated = resource_current.c.last_updated
        for key in search.sort or ("-_lastUpdated",):
            name, descending = key.lstrip("-"), key.startswith("-")
            if name in ("_id", "_lastUpdated"):
                column = (
                    resource_current.c.id
                    if name == "_id"
                    else (func.coalesce(updated, updated) if patients_first else updated)
                )
                order.append(column.desc() if descending else column.asc())
            else:  # resources without the value sort last either way
                value = sort_value(resource_type, name, descending)
                order.append((value.desc() if descending else value.asc()).nulls_last())
        return [*order, resource_current.c.id]

    def _counted_page(self, resource_type: str, search: Search) -> Any:
        """A patient's page with ``count(*) OVER ()`` last: every match is sorted and counted
        by id and sort key only, and just the page's rows are then read whole (sorting a
        thousand matches with their content took twice as long on PostgreSQL)."""
        order = self.order(resource_type, search)
        page = (
            self.filtered(resource_type, search)
            .with_only_columns(resource_current.c.id, func.count().over().label("total"))
            .order_by(*order)
            .limit(search.count)
            .offset(search.offset)
            .subquery("page")
        )
        return (
            select(resource_current, page.c.total)
            .join(page, resource_current.c.id == page.c.id)
            .where(resource_current.c.type == resource_type)
            .order_by(*order)
        )


def _indexed(
    by_reference: Any, resource_type: Any, sort: tuple[str, ...], count: Any, offset: Any
) -> Callable[..., Any]:
    """The page's ids sorted on the index rows (``by_reference``), then just those rows read
    whole; called with ``counted``: with the number of every match last (``total``)."""
    rows = reference_index
    page = (
        by_reference.add_columns(rows.c.last_updated)
        .order_by(*_sorted(sort, rows.c.id, rows.c.last_updated))
        .limit(count)
        .offset(offset)
        .subquery("page")
    )
    matched = and_(resource_current.c.type == resource_type, resource_current.c.id == page.c.id)

    def built(*, counted: bool) -> Any:
        columns: list[Any] = [resource_current]
        if counted:
            every = by_reference.with_only_columns(func.count()).scalar_subquery()
            columns.append(every.label("total"))
        return (
            select(*columns)
            .join(page, matched)
            .order_by(*_sorted(sort, page.c.id, page.c.last_updated))
        )

    return built


def _patient_pages() -> dict[tuple[bool, bool], Any]:
    """(in some partitions, counted): the statement of :meth:`SearchQueries._patient_page`."""
    rows = reference_index.c
    ids = select(rows.id).where(
        rows.type == bindparam("type"),
        rows.param == bindparam("param"),
        rows.target == bindparam("target"),
    )
    built = {}
    for in_some in (False, True):
        where = ids.where(rows.partition.in_(bindparam("partitions", expanding=True)))
        page = _indexed(
            where if in_some else ids,
            bindparam("type"),
            (),
            bindparam("count", type_=Integer),
            bindparam("offset", type_=Integer),
        )
        for counted in (False, True):
            built[(in_some, counted)] = page(counted=counted)
    return built


def _sorted(sort: tuple[str, ...], ids: Any, updated: Any) -> list[Any]:
    """The ORDER BY of a ``sort`` of ``_lastUpdated`` and ``_id`` keys only (newest first when
    none) on these columns, ties broken by id."""
    order = []
    for key in sort or ("-_lastUpdated",):
        column = ids if key.lstrip("-") == "_id" else updated
        order.append(column.desc() if key.startswith("-") else column.asc())
    return [*order, ids]


_PATIENT_PAGES = _patient_pages()
