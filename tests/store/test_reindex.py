"""``reindex`` rebuilds what an older version did not index, and nothing else changes."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from sqlalchemy import delete, select

from reko_fhir.config import Settings
from reko_fhir.store import Partitions, Search, SqlRepository
from reko_fhir.store.reindex import INDEX_TABLES, reindex
from tests.golden import FIXTURES
from tests.store.test_repository import procedure

UNIT = Partitions.of_unit("SE2321000016-AAAA")
AW026 = "urn:oid:1.2.752.116.1.3.2.1.4|AW026"


def careplan() -> dict[str, Any]:
    path = FIXTURES / "valid" / "careplan-dv077-on-sick-leave-steps.json"
    plan: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    plan["subject"] = {"reference": "Patient/p"}
    return plan


async def index_rows(repo: SqlRepository) -> dict[str, list[tuple[Any, ...]]]:
    async with repo.transaction(writer=False) as conn:
        return {
            table.name: sorted(
                tuple(str(v) for v in row) for row in (await conn.execute(select(table))).all()
            )
            for table in INDEX_TABLES
        }


async def _due(repo: SqlRepository) -> list[str]:
    search = Search((("activity-code", AW026), ("activity-date", "lt2025-07-01")), 50)
    return [s.id for s in await repo.scoped(UNIT).search("CarePlan", search)]


async def test_reindex_restores_what_an_older_version_left_unindexed(repo: SqlRepository) -> None:
    unit = repo.scoped(UNIT)
    plan = await unit.create(careplan())
    other = await unit.create(procedure("Patient/p"))
    gone = await unit.create(procedure("Patient/q"))
    await unit.delete("Procedure", gone.id)
    written = await index_rows(repo)
    assert await _due(repo) == [plan.id]
    # A store from before CarePlan's activity-* parameters were indexed.
    async with repo.transaction() as conn:
        for table in INDEX_TABLES:
            await conn.execute(delete(table).where(table.c.param.like("activity-%")))
    assert await _due(repo) == []

    done = await reindex(repo, batch=1)  # one resource a transaction: the paging is tested too
    assert done == {"CarePlan": 1, "Procedure": 1}  # the deleted one is not current
    assert await _due(repo) == [plan.id]
    assert await index_rows(repo) == written  # exactly the rows a write makes, no duplicates
    assert await reindex(repo, ["Procedure"]) == {"Procedure": 1}
    assert await index_rows(repo) == written
    assert [s.id for s in await unit.search("Procedure", Search((("patient", "p"),), 9))] == [
        other.id
    ]


def test_the_command_reindexes_the_configured_store(tmp_path: Path) -> None:
    async def stored() -> None:
        repo = await SqlRepository.open(Settings(data_dir=tmp_path).sqlalchemy_url())
        try:
            await repo.scoped(UNIT).create(careplan())
        finally:
            await repo.close()

    asyncio.run(stored())
    done = subprocess.run(
        [sys.executable, "-m", "reko_fhir", "reindex", "--type", "CarePlan"],
        env={"REKO_DATA_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[-1]) == {"reindexed": {"CarePlan": 1}, "total": 1}
