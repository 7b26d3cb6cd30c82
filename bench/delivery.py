"""Delivery throughput to a FHIR target on loopback: the outbox against direct conditional PUTs.

    python bench/delivery.py [--messages 5000] [--concurrency 8] [--target plain|medplum]
                             [--before DIR] [--batch N]

On a fresh PostgreSQL schema (127.0.0.1:5432, database test): a backlog of ``--messages``
Patients is written (and so enqueued), then drained by ``reko-fhir worker`` processes, with 1
and then with 4 workers. The baseline, measured in the same run against the same server, is
the same number of conditional updates sent straight from one process, with no outbox, by a
well-configured client: one ``httpx.AsyncClient`` whose keep-alive pool holds every
connection it uses (``--baseline-concurrency``, the fastest of them counts). Ratios are
against that baseline.

Fair to both sides:
- the plain target stores in a dict but finds a conditional update's match by scanning it, so
  it slows as it fills: it is reset (``POST /_reset``) before every phase, and every phase
  sends the same number of resources;
- a worker process's start (imports, connecting) is left out: a phase is timed from its first
  delivery, over the messages delivered after it (the start is printed beside);
- the backlog is watched over one open connection, not a new engine per look.

``--before DIR`` also drains with the worker of another checkout (``DIR/src``, e.g. an export of
main), in the same run, against the same baseline: before and after side by side.

``--batch N`` also drains with the target taking FHIR ``batch`` Bundles of up to N writes
(``batch: N`` in the targets file), after the same backlog drained one request a message: both
modes in one run, against the same baseline (which stays single conditional PUTs). Its lines
say ``(batch N)``.

Needs the PostgreSQL of this machine (and ``npm ci --prefix tests/peers`` for Medplum).
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
from psycopg import sql

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.peers.servers import Peer, fault_target, medplum

from reko_fhir.delivery.fhir import FhirTarget
from reko_fhir.store import SqlRepository
from reko_fhir.store.outbox import Subscription

PG = "postgresql://postgres@127.0.0.1:5432/test"


def patient(run: str, n: int) -> dict[str, object]:
    return {
        "resourceType": "Patient",
        "id": f"{run}-{n}",
        "identifier": [{"system": f"https://bench.reko/{run}", "value": f"P{n:06d}"}],
        "active": True,
        "name": [{"family": "Bench", "given": [f"N{n}"]}],
    }


def reset(peer: Peer, plain: bool) -> None:
    """An empty target for the next phase (the plain target only: Medplum has no reset)."""
    if plain:
        httpx.post(f"{peer.base_url}/_reset", timeout=10).raise_for_status()


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process so far (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text(encoding="ascii").rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def baseline(base: str, count: int, run: str, concurrency: int) -> tuple[float, float]:
    """Conditional updates straight to the server, ``concurrency`` at a time: (deliveries/s,
    the sending process's CPU ms per request)."""
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=30, limits=limits) as http:
        target = FhirTarget(http, base, name="baseline")
        queue = list(range(count))

        async def sender() -> None:
            while queue:
                await target.push(patient(run, queue.pop()))

        started, cpu = time.perf_counter(), time.process_time()
        await asyncio.gather(*(sender() for _ in range(concurrency)))
        used = (time.process_time() - cpu) * 1000 / count
        return count / (time.perf_counter() - started), used


async def enqueue(url: str, count: int, run: str) -> float:
    repo = await SqlRepository.open(url, subscriptions=[Subscription("medplum", frozenset())])
    started = time.perf_counter()
    try:
        for start in range(0, count, 500):
            async with repo.unit() as unit:
                for n in range(start, min(start + 500, count)):
                    await unit.create(patient(run, n), resource_id=f"{run}-{n}")
    finally:
        await repo.close()
    return time.perf_counter() - started


async def drain(
    schema: str, command: list[str], env: dict[str, str], workers: int
) -> tuple[float, float, float]:
    """Start ``workers`` processes on the backlog: (seconds to the first delivery, the rate
    after it, the workers' CPU ms per delivery after it)."""
    log = Path(env["REKO_DATA_DIR"], "worker.log").open("ab")  # noqa: SIM115 - for the run
    conn = await psycopg.AsyncConnection.connect(PG, autocommit=True)
    count = sql.SQL("SELECT count(*) FROM {}.outbox_message WHERE status = %s").format(
        sql.Identifier(schema)
    )

    async def pending() -> int:
        row = await (await conn.execute(count, ("pending",))).fetchone()
        return int(row[0]) if row else 0

    total = await pending()
    spawned = time.perf_counter()
    processes = [subprocess.Popen(command, env=env, stderr=log) for _ in range(workers)]
    try:
        first: tuple[float, int] | None = None
        while left := await pending():
            if first is None and left < total:
                first = (time.perf_counter(), left)
                cpu = sum(cpu_seconds(p.pid) for p in processes)
            if any(p.poll() is not None for p in processes):
                log.flush()
                tail = Path(log.name).read_text(encoding="utf-8", errors="replace")[-3000:]
                raise SystemExit(f"a worker ended early; the end of its log:\n{tail}")
            await asyncio.sleep(0.05)
        ended = time.perf_counter()
        if first is None:  # all in the first look: too few messages to time
            raise SystemExit("the backlog drained before it could be timed: use more --messages")
        used = (sum(cpu_seconds(p.pid) for p in processes) - cpu) * 1000 / first[1]
        return first[0] - spawned, first[1] / (ended - first[0]), used
    finally:
        for p in processes:
            p.terminate()
            p.wait(20)
        await conn.close()
        log.close()


def targets_file(
    folder: Path, name: str, base: str, concurrency: int | None, batch: int | None = None
) -> Path:
    """The targets file a worker reads; ``concurrency`` None for a checkout that has none,
    ``batch`` None for one request a message."""
    path = folder / name
    extra = f", concurrency: {concurrency}" if concurrency is not None else ""
    extra += f", batch: {batch}" if batch else ""
    path.write_text(
        f"targets: [{{name: medplum, base_url: '{base}', timeout: 30{extra}}}]\n",
        encoding="utf-8",
    )
    return path


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=5_000)
    parser.add_argument(
        "--concurrency", type=int, default=8, help="the worker's target concurrency"
    )
    parser.add_argument(
        "--baseline-concurrency",
        default="8,32",
        help="comma list: the baseline is measured at each, the fastest counts",
    )
    parser.add_argument("--workers", default="1,4", help="comma list of worker process counts")
    parser.add_argument("--before", type=Path, help="also drain with this checkout's worker")
    parser.add_argument(
        "--batch",
        type=int,
        default=0,
        help="also drain with the target taking batch Bundles of up to N writes (batch: N)",
    )
    parser.add_argument(
        "--target",
        choices=["plain", "medplum"],
        default="plain",
        help="plain: tests/peers/fault_target.py with no faults (a dict behind HTTP, reset "
        "between phases); medplum: Medplum's router, whose in-memory search slows as it fills",
    )
    args = parser.parse_args()
    plain = args.target == "plain"
    schema = f"bench_delivery_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    url = f"postgresql+psycopg://postgres@127.0.0.1:5432/test?options=-csearch_path%3D{schema}"
    after = [sys.executable, "-m", "reko_fhir", "worker"]
    try:
        peer = fault_target(0.0) if plain else medplum()
        with peer as server, tempfile.TemporaryDirectory() as tmp:
            env = {
                **os.environ,
                "REKO_DATABASE_URL": url.replace("+psycopg", ""),
                "REKO_DATA_DIR": tmp,
            }
            base_rate = 0.0
            for concurrency in (int(c) for c in args.baseline_concurrency.split(",")):
                reset(server, plain)
                rate, used = await baseline(
                    server.base_url, args.messages, uuid.uuid4().hex[:6], concurrency
                )
                print(
                    f"direct conditional PUT, {concurrency} concurrent on a keep-alive pool of "
                    f"{concurrency}, no outbox: {rate:,.0f}/s ({used:.2f} ms CPU a request)",
                    flush=True,
                )
                base_rate = max(base_rate, rate)
            versions: list[tuple[str, list[str], int | None, int | None, dict[str, str]]]
            versions = [("after", after, args.concurrency, None, {})]
            if args.batch:
                batched = f"after (batch {args.batch})"
                versions.append((batched, after, args.concurrency, args.batch, {}))
            if args.before:
                src = str(args.before.resolve() / "src")
                versions.insert(0, ("before", after, None, None, {"PYTHONPATH": src}))
            for workers in (int(w) for w in args.workers.split(",")):
                for label, command, concurrency, batch, extra in versions:
                    reset(server, plain)
                    run = uuid.uuid4().hex[:6]
                    filled = await enqueue(url, args.messages, run)
                    name = f"{label.split()[0]}-{batch or 'single'}.yaml"
                    targets = targets_file(Path(tmp), name, server.base_url, concurrency, batch)
                    phase_env = {**env, **extra, "REKO_TARGETS_FILE": str(targets)}
                    start, rate, used = await drain(schema, command, phase_env, workers)
                    print(
                        f"{label}: {workers} worker process(es), {args.messages:,} backlog: "
                        f"{rate:,.0f} deliveries/s, ratio {rate / base_rate:.2f} "
                        f"({used:.2f} ms worker CPU a delivery; first delivery {start:.1f} s "
                        f"after start; enqueued in {filled:.1f} s)",
                        flush=True,
                    )
    finally:
        with psycopg.connect(PG, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


if __name__ == "__main__":
    asyncio.run(main())
