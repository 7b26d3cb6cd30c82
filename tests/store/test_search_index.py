"""A search naming one reference target is answered from ``reference_index`` (0010): the same
matches, order, pages and totals as before, in every partition a caller reads."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import text
from sqlalchemy.dialects import sqlite

from reko_fhir.store import Partitions, Search, SqlRepository
from reko_fhir.store.memory import MemoryRepository
from reko_fhir.store.unit import Unit
from tests.store.test_repository import procedure

UNIT_A = Partitions.of_unit("SE2321000016-AAAA")
UNIT_B = Partitions.of_unit("SE2321000016-BBBB")


async def _ids(
    store: Any, query: str, *, count: int = 50, offset: int = 0
) -> tuple[list[str], Any]:
    search = Search.parse(query, count)
    sort = tuple(v.split(",")[0] for k, v in search.params if k == "_sort")
    search = Search(tuple(p for p in search.params if p[0] != "_sort"), count, offset, sort)
    found, total = await store.page("Procedure", search)
    return [s.id for s in found], total


async def test_a_patients_matches_follow_partitions_deletes_updates_and_filters(
    store: SqlRepository | MemoryRepository,
) -> None:
    """Every store (memory is the reference): a deleted match is gone, an updated one is the
    newest, each unit counts only its own, other parameters and ``_lastUpdated`` narrow."""
    unit_a, unit_b = store.scoped(UNIT_A), store.scoped(UNIT_B)
    made = []
    for status in ("completed", "in-progress", "completed", "completed"):
        made.append(await unit_a.create(procedure("Patient/p", status)))
        await asyncio.sleep(0.002)  # distinct lastUpdated, so "newest first" is one order
    theirs = [await unit_b.create(procedure("Patient/p")) for _ in range(2)]
    await unit_a.create(procedure("Patient/other"))
    await unit_a.delete("Procedure", made[1].id)
    await asyncio.sleep(0.002)
    updated = await unit_a.update({**made[0].resource, "status": "stopped"})
    kept = [updated.id, made[3].id, made[2].id]  # newest first

    assert await _ids(unit_a, "patient=Patient/p") == (kept, 3)
    assert await _ids(unit_a, "patient=p") == (kept, 3)
    assert await _ids(unit_a, "subject=Patient/p") == (kept, 3)
    assert await _ids(unit_b, "patient=Patient/p") == ([t.id for t in theirs[::-1]], 2)
    assert (await _ids(store, "patient=Patient/p"))[1] == 5  # every partition
    assert await _ids(unit_a, "patient=Patient/p&status=completed") == (kept[1:], 2)
    assert await _ids(unit_a, "patient=Patient/p", count=1, offset=1) == (kept[1:2], 3)
    assert await _ids(unit_a, "patient=Patient/p", count=2, offset=3) == ([], 3)
    assert await _ids(unit_a, "patient=Patient/p&_sort=_id") == (sorted(kept), 3)
    assert await _ids(unit_a, "patient=Patient/p&_sort=_lastUpdated") == (kept[::-1], 3)
    since = updated.last_updated.isoformat()
    assert await _ids(unit_a, f"patient=Patient/p&_lastUpdated=ge{since}") == ([updated.id], 1)
    assert await unit_a.total("Procedure", Search.parse("patient=Patient/p")) == 3
    assert await _ids(unit_a, "patient=Patient/nobody") == ([], 0)


async def test_reference_rows_carry_the_current_versions_partition_and_time(
    repo: SqlRepository,
) -> None:
    """The rows the search reads instead of ``resource_current``: written with each version,
    gone with its deletion, each (param, target) once."""
    unit_a = repo.scoped(UNIT_A)
    same = {"reference": "Organization/o"}
    twice = {"resourceType": "Communication", "status": "completed", "recipient": [same, same]}
    made = await unit_a.create(procedure("Patient/p"))
    updated = await unit_a.update({**made.resource, "status": "stopped"})
    sent = await unit_a.create(twice)
    gone = await unit_a.create(procedure("Patient/p"))
    await unit_a.delete("Procedure", gone.id)
    async with repo.engine.connect() as conn:
        rows = (
            await conn.execute(
                text(
                    "SELECT r.type, r.id, r.param, r.partition, r.last_updated = c.last_updated "
                    "FROM reference_index r JOIN resource_current c "
                    "ON c.type = r.type AND c.id = r.id ORDER BY r.type, r.param"
                )
            )
        ).all()
    assert [(*row[:4], bool(row[4])) for row in rows] == [
        ("Communication", sent.id, "recipient", UNIT_A.own, True),
        ("Procedure", updated.id, "patient", UNIT_A.own, True),
        ("Procedure", updated.id, "subject", UNIT_A.own, True),
    ]


async def test_a_patients_page_reads_only_its_own_rows_of_resource_current(
    repo: SqlRepository,
) -> None:
    """The count and the sort come from ``ix_reference_lookup`` alone: ``resource_current`` is
    read by primary key for the page's rows only, not once per match (SQLite's plan)."""
    search = Search((("patient", "Patient/p"),), 20)
    async with repo.engine.connect() as conn:
        unit = Unit(conn, lock_rows=False, partitions=UNIT_A)
        query = unit._indexed_page("Procedure", search, unit._by_reference("Procedure", search))
        if not repo.is_sqlite:
            assert query is not None
            return
        compiled = query.compile(dialect=sqlite.dialect(), compile_kwargs={"literal_binds": True})
        plan = (await conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}")).all()
    steps = [str(row[-1]) for row in plan]
    reference = [s for s in steps if "reference_index" in s]
    current = [s for s in steps if "resource_current" in s]
    assert reference
    assert all("COVERING INDEX ix_reference_lookup" in s for s in reference)
    assert len(current) == 1  # the page's rows, joined by primary key
