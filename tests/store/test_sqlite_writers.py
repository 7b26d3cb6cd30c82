"""SQLite specifics: statements run on the loop's thread, and writers queue before BEGIN.

Two repositories on one file stand for two worker processes: each has its own in-process
queue, so only the lock file beside the database keeps them apart.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from reko_fhir.store import SqlRepository
from reko_fhir.store.sqlite_inline import InlineConnection


@pytest.fixture
async def two(tmp_path: Path) -> AsyncIterator[tuple[SqlRepository, SqlRepository]]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'store.sqlite3'}"
    first = await SqlRepository.open(url)
    second = await SqlRepository.open(url)
    yield first, second
    await first.close()
    await second.close()


@asynccontextmanager
async def _holding(
    repo: SqlRepository, resource: dict[str, str] | None = None
) -> AsyncIterator[None]:
    """``repo`` holds the write lock (in a unit, having written ``resource``) for the block."""
    release = asyncio.Event()

    async def hold() -> None:
        async with repo.unit() as unit:
            if resource is not None:
                await unit.create(resource)
            await release.wait()

    holder = asyncio.create_task(hold())
    await asyncio.sleep(0.05)
    try:
        yield
    finally:
        release.set()
        await holder


async def test_statements_run_on_the_loop_thread_not_a_driver_thread(tmp_path: Path) -> None:
    repo = await SqlRepository.open(f"sqlite+aiosqlite:///{tmp_path / 'store.sqlite3'}")
    try:
        async with repo.engine.connect() as conn:
            raw = await conn.get_raw_connection()
            assert isinstance(raw.driver_connection, InlineConnection)
        assert (await repo.create({"resourceType": "Patient"})).created
    finally:
        await repo.close()


async def test_a_writer_of_another_process_waits_for_the_lock_then_writes(
    two: tuple[SqlRepository, SqlRepository],
) -> None:
    first, second = two
    async with _holding(first, {"resourceType": "Patient", "id": "held"}):
        waiter = asyncio.create_task(second.create({"resourceType": "Patient"}))
        await asyncio.sleep(0.3)
        # Waiting on the lock file, not in SQLite's busy handler (which would block this loop,
        # and with it the holder, until its 30 s ran out).
        assert not waiter.done()
    stored = await asyncio.wait_for(waiter, 5)
    assert stored.created
    assert await first.count("Patient") == 2


async def test_a_cancelled_waiter_leaves_the_lock_free(
    two: tuple[SqlRepository, SqlRepository],
) -> None:
    first, second = two
    async with _holding(first):
        waiter = asyncio.create_task(second.create({"resourceType": "Patient"}))
        await asyncio.sleep(0.1)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
    # The cancelled waiter's thread got the lock after the holder let go, and gave it back.
    stored = await asyncio.wait_for(second.create({"resourceType": "Patient"}), 5)
    assert stored.created
    assert await first.count("Patient") == 1


async def test_many_concurrent_writers_of_two_processes_all_land(
    two: tuple[SqlRepository, SqlRepository],
) -> None:
    writes = [
        repo.create({"resourceType": "Patient", "name": [{"family": f"P{n}"}]})
        for n in range(40)
        for repo in two
    ]
    stored = await asyncio.gather(*writes)
    assert len({s.id for s in stored}) == 80
    assert await two[0].count("Patient") == 80
