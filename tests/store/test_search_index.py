"""A search naming one reference target is answered from ``reference_index`` (0010): the same
matches, order, pages and totals as before, in every partition a caller reads."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

from sqlalchemy import text
from sqlalchemy.dialects import postgresql, sqlite

from reko_fhir.store import Partitions, Search, SqlRepository
from reko_fhir.store.bulk import bulk_load
from reko_fhir.store.memory import MemoryRepository
from reko_fhir.store.search_sql import SearchQueries
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
    read by primary key for the page's rows only, not once per match (each database's plan)."""
    others = (procedure(f"Patient/{n}") for n in range(2000))
    await bulk_load(repo, others, partition=str(UNIT_A.own))
    await bulk_load(repo, (procedure("Patient/p") for _ in range(200)), partition=str(UNIT_A.own))
    search = Search((("patient", "Patient/p"),), 20)
    built, params = SearchQueries(UNIT_A).page("Procedure", search, counted=True)
    query = built.params(params)
    dialect = sqlite.dialect() if repo.is_sqlite else postgresql.dialect()
    sql = query.compile(dialect=dialect, compile_kwargs={"literal_binds": True})
    async with repo.engine.connect() as conn:
        if repo.is_sqlite:
            plan = (await conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}")).all()
            steps = [str(row[-1]) for row in plan]
        else:  # as autovacuum leaves it; the tables are small: a scan would win without this
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.exec_driver_sql("VACUUM ANALYZE reference_index")
            await conn.exec_driver_sql("SET enable_seqscan = off")
            await conn.exec_driver_sql("SET enable_bitmapscan = off")
            plan = (await conn.exec_driver_sql(f"EXPLAIN (FORMAT JSON) {sql}")).scalar_one()
            steps = list(_nodes(plan[0]["Plan"]))
    reference = [s for s in steps if "reference_index" in s]
    current = [s for s in steps if "resource_current" in s]
    assert len(reference) == 2, steps  # the page and the count
    assert all(
        "COVERING INDEX ix_reference_lookup" in s or "Index Only Scan" in s for s in reference
    ), steps
    assert len(current) == 1  # the page's rows, joined by primary key


def _nodes(node: dict[str, Any]) -> Iterator[str]:
    """Each node of a PostgreSQL plan that reads a table: its type, table and index."""
    if "Relation Name" in node:
        yield f"{node['Node Type']} {node['Relation Name']} {node.get('Index Name')}"
    for child in node.get("Plans", []):
        yield from _nodes(child)
