"""SQLite's checkpoints run after the write lock, on a thread (store/sqlite_inline.py
WalCheckpoints): no commit copies the WAL back into the database file itself."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from reko_fhir.store import SqlRepository
from reko_fhir.store import sqlite_inline as inline


async def _grown(path: Path, size: int, seconds: float = 10) -> bool:
    """Whether ``path`` outgrows ``size`` within ``seconds``."""
    deadline = asyncio.get_running_loop().time() + seconds
    while asyncio.get_running_loop().time() < deadline:
        if path.stat().st_size > size:
            return True
        await asyncio.sleep(0.02)
    return False


async def _write(repo: SqlRepository, patients: int, text: str = "") -> None:
    async with repo.unit() as unit:
        for _ in range(patients):
            await unit.create({"resourceType": "Patient", "name": [{"text": text or "x"}]})


async def test_no_commit_checkpoints(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Past SQLite's 1,000 pages of WAL, where a commit used to copy them into the database
    file (30-90 ms at 100,000 stored, under the lock every writer waits on), it does not:
    with no checkpoint due, the file stays as it was and the WAL holds the writes."""
    monkeypatch.setattr(inline, "CHECKPOINT_UNITS", 10**6)
    monkeypatch.setattr(inline, "CHECKPOINT_SECONDS", 10**6)
    database = tmp_path / "store.sqlite3"
    repo = await SqlRepository.open(f"sqlite+aiosqlite:///{database}")
    try:
        before = database.stat().st_size
        for _ in range(6):  # about 6 MB of WAL, six commits
            await _write(repo, 250, "y" * 4000)
        wal = Path(f"{database}-wal").stat().st_size
        assert wal > 5_000_000
        assert not await _grown(database, before, seconds=0.5)
        async with repo.engine.connect() as conn:
            assert (await conn.exec_driver_sql("PRAGMA wal_autocheckpoint")).scalar() == 0
    finally:
        await repo.close()


async def test_a_checkpoint_follows_the_writes(tmp_path: Path) -> None:
    """After :data:`~reko_fhir.store.sqlite_inline.CHECKPOINT_UNITS` writer transactions the
    WAL is copied into the database file, by a thread, while the store goes on."""
    database = tmp_path / "store.sqlite3"
    repo = await SqlRepository.open(f"sqlite+aiosqlite:///{database}")
    try:
        await asyncio.sleep(0.2)  # the migration's own checkpoint, if one was started
        before = database.stat().st_size
        for _ in range(inline.CHECKPOINT_UNITS):
            await _write(repo, 5, "z" * 2000)
        assert await _grown(database, before)
        assert await repo.count("Patient") == 5 * inline.CHECKPOINT_UNITS
    finally:
        await repo.close()


async def test_the_wal_starts_again_under_writers_that_never_pause(tmp_path: Path) -> None:
    """Two stores on one file (two worker processes) writing without a pause: the WAL is still
    checkpointed to its end now and then, so it starts again from its first frame instead of
    growing with every write (checkpointed only beside the writers, it held every frame
    written: 35 MB of WAL for a 14 MB database)."""
    database = tmp_path / "store.sqlite3"
    url = f"sqlite+aiosqlite:///{database}"
    first, second = await SqlRepository.open(url), await SqlRepository.open(url)
    try:
        await asyncio.gather(*(_write_units(repo, 120) for repo in (first, second)))
        wal = Path(f"{database}-wal").stat().st_size
        assert wal < database.stat().st_size / 2
        assert await first.count("Patient") == 2 * 120 * 5
    finally:
        await first.close()
        await second.close()


async def _write_units(repo: SqlRepository, units: int) -> None:
    for _ in range(units):
        await _write(repo, 5, "w" * 4000)
