"""Fault tests against real processes on loopback: the fault-injecting target
(``tests/peers/fault_target.py``) and ``reko-fhir worker`` processes, with no mocks.

- 2,000 deliveries to a target failing 30 % of the time, two worker processes sharing the
  PostgreSQL outbox: all delivered, none lost, none twice at the target.
- ``kill -9`` of the worker mid-run, then a new one: the same.
- The target down for a minute: the backlog drains once it is back.

The first two also with the target taking ``batch`` Bundles of 10 (faults on whole requests and
on single entries).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from reko_fhir.store import SqlRepository, outbox_admin
from reko_fhir.store.outbox import Subscription
from tests.peers.servers import fault_target
from tests.store.conftest import postgres_schema
from tests.writes import put_in

ROOT = Path(__file__).resolve().parents[2]
REKO = Path(sys.executable).with_name("reko-fhir")
SYSTEM = "https://reko.test/sid/fault-patient"


def start_worker(env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen([str(REKO), "worker"], env=env, stdout=subprocess.DEVNULL)


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[tuple[str, dict[str, str]]]:
    """A PostgreSQL store and the environment that points a worker at it."""
    async with postgres_schema() as url:
        env = {
            **os.environ,
            "REKO_DATABASE_URL": url,
            "REKO_DATA_DIR": str(tmp_path),
            "REKO_TARGETS_FILE": str(tmp_path / "targets.yaml"),
            "REKO_WORKER_LEASE_SECONDS": "3",
            "REKO_WORKER_BATCH": "32",
        }
        yield url.replace("postgresql://", "postgresql+psycopg://", 1), env


def write_targets(
    env: dict[str, str], base: str, *, max_age: float = 600, batch: int | None = None
) -> None:
    # The target answers one request at a time and scans all it holds for each entry: with
    # batches, fewer in flight keep each answer within the 1 s timeout.
    batched = f"\n    batch: {batch}\n    concurrency: 2" if batch else ""
    Path(env["REKO_TARGETS_FILE"]).write_text(
        f"""targets:
  - name: faulty
    base_url: {base}
    resource_types: [Patient]
    timeout: 1.0{batched}
    retry: {{max_attempts: 1000, max_age: {max_age}, initial_wait: 0.02,
            longest_wait: 1.0, jitter: 0.05}}
""",
        encoding="utf-8",
    )


async def enqueue_patients(url: str, count: int) -> None:
    """``count`` Patients written (and so enqueued for 'faulty') in units of 200."""
    repo = await SqlRepository.open(url, subscriptions=[Subscription("faulty", frozenset())])
    try:
        for start in range(0, count, 200):
            async with repo.unit() as unit:
                for n in range(start, min(start + 200, count)):
                    await put_in(
                        unit,
                        {
                            "resourceType": "Patient",
                            "id": f"fault-{n}",
                            "identifier": [{"system": SYSTEM, "value": f"P{n:05d}"}],
                            "active": True,
                        },
                    )
    finally:
        await repo.close()


async def outbox_counts(url: str) -> dict[str, int]:
    repo = await SqlRepository.open(url)
    try:
        async with repo.transaction(writer=False) as conn:
            depth = await outbox_admin.depth(conn)
    finally:
        await repo.close()
    counts = {"pending": 0, "delivered": 0, "dead": 0}
    for (_, status), (count, _) in depth.items():
        counts[status] += count
    return counts


async def wait_delivered(url: str, count: int, seconds: float) -> dict[str, int]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        counts = await outbox_counts(url)
        if counts["delivered"] + counts["dead"] >= count:
            return counts
        await asyncio.sleep(0.5)
    return await outbox_counts(url)


def target_stats(base: str) -> dict[str, object]:
    stats: dict[str, object] = httpx.get(f"{base}/_stats", timeout=5).json()
    return stats


def assert_each_once_at_target(base: str, count: int) -> dict[str, object]:
    """Every identifier stored, each held by exactly one resource at the target."""
    stats = target_stats(base)
    assert stats["distinct"] == count
    assert stats["resources"] == count
    assert stats["duplicates"] == []
    return stats


@pytest.mark.parametrize("batch", [None, 10], ids=["single", "batch"])
async def test_two_thousand_deliveries_through_thirty_percent_failures(
    store: tuple[str, dict[str, str]], batch: int | None
) -> None:
    url, env = store
    with fault_target(0.3, seed=7, hang_seconds=3) as peer:
        base = peer.base_url
        write_targets(env, base, batch=batch)
        await enqueue_patients(url, 2000)
        workers = [start_worker(env), start_worker(env)]  # sharing the outbox (SKIP LOCKED)
        try:
            counts = await wait_delivered(url, 2000, 240)
        finally:
            for worker in workers:
                stop(worker)
        assert counts == {"pending": 0, "delivered": 2000, "dead": 0}
        stats = assert_each_once_at_target(base, 2000)
        assert stats["faults"], "the target injected no faults: the test proves nothing"
        if batch:  # in batches, with faults on whole requests and on single entries
            assert stats["batches"]
            assert any(kind.startswith("entry:") for kind in stats["faults"])


@pytest.mark.parametrize("batch", [None, 10], ids=["single", "batch"])
async def test_a_worker_killed_mid_run_loses_and_duplicates_nothing(
    store: tuple[str, dict[str, str]], batch: int | None
) -> None:
    url, env = store
    with fault_target(0.1, seed=11, hang_seconds=3) as peer:
        base = peer.base_url
        write_targets(env, base, batch=batch)
        await enqueue_patients(url, 2000)
        first = start_worker(env)
        try:
            deadline = time.monotonic() + 120
            while (await outbox_counts(url))["delivered"] < 300:
                assert time.monotonic() < deadline, "the first worker delivered too little"
                await asyncio.sleep(0.2)
        finally:
            os.kill(first.pid, signal.SIGKILL)  # mid-run: leases held, attempts unrecorded
            first.wait(10)
        assert (await outbox_counts(url))["pending"] > 0
        second = start_worker(env)
        try:
            counts = await wait_delivered(url, 2000, 240)
        finally:
            stop(second)
        assert counts == {"pending": 0, "delivered": 2000, "dead": 0}
        assert_each_once_at_target(base, 2000)


async def test_a_target_down_for_a_minute_then_the_backlog_drains(
    store: tuple[str, dict[str, str]],
) -> None:
    url, env = store
    with fault_target(0.0, seed=3) as peer:
        base = peer.base_url
        write_targets(env, base, max_age=600)
        httpx.post(f"{base}/_down", params={"seconds": "60"}, timeout=5).raise_for_status()
        down_since = time.monotonic()
        await enqueue_patients(url, 500)
        worker = start_worker(env)
        try:
            await asyncio.sleep(5)
            early = await outbox_counts(url)
            assert early["delivered"] == 0  # nothing gets through while it is down
            counts = await wait_delivered(url, 500, 180)
            drained_after = time.monotonic() - down_since
        finally:
            stop(worker)
        assert counts == {"pending": 0, "delivered": 500, "dead": 0}
        assert drained_after >= 60
        assert_each_once_at_target(base, 500)
