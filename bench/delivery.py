"""Delivery throughput to a FHIR target on loopback.

    python bench/delivery.py [--messages 10000] [--baseline 2000] [--target plain|medplum]

On a fresh PostgreSQL schema (127.0.0.1:5432, database test): a backlog of ``--messages``
Patients is written (and so enqueued), then drained by ``reko-fhir worker`` processes, with 1
and then with 4 workers. The baseline, measured in the same run against the same server, is
the same conditional updates sent straight from one process with 32 concurrent requests
and no outbox: the figure the outbox's bookkeeping costs against.

Needs ``npm ci --prefix tests/peers`` (Medplum) and the PostgreSQL of this machine.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.peers.servers import fault_target, medplum

from reko_fhir.delivery.fhir import FhirTarget
from reko_fhir.store import SqlRepository, outbox
from reko_fhir.store.outbox import Subscription

PG = "postgresql://postgres@127.0.0.1:5432/test"
REKO = Path(sys.executable).with_name("reko-fhir")


def patient(run: str, n: int) -> dict[str, object]:
    return {
        "resourceType": "Patient",
        "id": f"{run}-{n}",
        "identifier": [{"system": f"https://bench.reko/{run}", "value": f"P{n:06d}"}],
        "active": True,
        "name": [{"family": "Bench", "given": [f"N{n}"]}],
    }


async def baseline(base: str, count: int, run: str) -> float:
    """Conditional updates straight to the server, 32 at a time: deliveries/s."""
    async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=32)) as http:
        target = FhirTarget(http, base, name="baseline")
        queue = list(range(count))

        async def sender() -> None:
            while queue:
                await target.push(patient(run, queue.pop()))

        started = time.perf_counter()
        await asyncio.gather(*(sender() for _ in range(32)))
        return count / (time.perf_counter() - started)


async def enqueue(url: str, count: int, run: str) -> float:
    repo = await SqlRepository.open(url, subscriptions=[Subscription("medplum", frozenset())])
    started = time.perf_counter()
    try:
        for start in range(0, count, 500):
            async with repo.unit() as unit:
                for n in range(start, min(start + 500, count)):
                    await unit.update(patient(run, n))
    finally:
        await repo.close()
    return time.perf_counter() - started


async def pending(url: str) -> int:
    repo = await SqlRepository.open(url)
    try:
        async with repo.transaction(writer=False) as conn:
            depth = await outbox.depth(conn)
    finally:
        await repo.close()
    return sum(count for (_, status), (count, _) in depth.items() if status == "pending")


async def drain(url: str, env: dict[str, str], workers: int, count: int) -> float:
    log = Path(env["REKO_DATA_DIR"], "worker.log").open("ab")  # noqa: SIM115 - for the run
    processes = [
        subprocess.Popen([str(REKO), "worker"], env=env, stderr=log) for _ in range(workers)
    ]
    started = time.perf_counter()
    try:
        while await pending(url):
            if any(p.poll() is not None for p in processes):
                raise SystemExit("a worker ended early")
            await asyncio.sleep(0.2)
        return time.perf_counter() - started
    finally:
        for p in processes:
            p.terminate()
            p.wait(20)


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--baseline", type=int, default=2_000)
    parser.add_argument(
        "--target",
        choices=["plain", "medplum"],
        default="plain",
        help="plain: tests/peers/fault_target.py with no faults (a dict behind HTTP, so the "
        "target is not the bottleneck); medplum: Medplum's router, whose in-memory search "
        "slows as it fills",
    )
    args = parser.parse_args()
    schema = f"bench_delivery_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    url = f"postgresql+psycopg://postgres@127.0.0.1:5432/test?options=-csearch_path%3D{schema}"
    try:
        peer = medplum() if args.target == "medplum" else fault_target(0.0)
        with peer as server, tempfile.TemporaryDirectory() as tmp:
            targets = Path(tmp) / "targets.yaml"
            targets.write_text(
                f"targets: [{{name: medplum, base_url: '{server.base_url}', timeout: 30}}]\n",
                encoding="utf-8",
            )
            env = {
                **os.environ,
                "REKO_DATABASE_URL": url.replace("+psycopg", ""),
                "REKO_TARGETS_FILE": str(targets),
                "REKO_DATA_DIR": tmp,
            }
            base_rate = await baseline(server.base_url, args.baseline, uuid.uuid4().hex[:6])
            print(
                f"direct conditional PUT, 32 concurrent, no outbox (baseline): {base_rate:,.0f}/s"
            )
            for workers in (1, 4):
                run = uuid.uuid4().hex[:6]
                filled = await enqueue(url, args.messages, run)
                took = await drain(url, env, workers, args.messages)
                rate = args.messages / took
                print(
                    f"{workers} worker process(es): {args.messages:,} backlog drained in "
                    f"{took:.1f} s = {rate:,.0f} deliveries/s, ratio {rate / base_rate:.2f} "
                    f"(enqueued in {filled:.1f} s)"
                )
    finally:
        with psycopg.connect(PG, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


if __name__ == "__main__":
    asyncio.run(main())
