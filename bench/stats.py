"""Benchmark: one unit-month of KVÅ statistics against the searches that count the same groups.

Run by hand: ``python bench/stats.py [--rows 100000] [--repeat 15] [--databases sqlite postgresql]``.
Not a test. For each database it bulk-loads ``--rows`` Procedures (a year at two care units,
GC001/DV077/AW026 and other codes, mostly completed, most with a coordination part) with the
episodes and notices to Försäkringskassan around them (:func:`reko_fhir.store.bulk.bulk_load`:
the rows a create writes), then times, in the same run and interleaved:

- ``stats``: one unit's ``kva_counts`` for one month (all seven groups, GC001's strata);
- ``searches``: the ``_summary=count`` searches of that unit and month that count the same
  groups — GC001, DV077, AW026, GC001 per coordination part (3), notices to Försäkringskassan:
  seven totals. (``patienter``, ``nya-insatser`` and ``inom-90-dagar`` are no single search; the
  statistics count them too, on top.)

Both through the repository interface, scoped to the unit as a unit's token is. The figure is
the median of ``--repeat`` runs each, and the ratio stats/searches.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import psycopg

from reko_fhir.mapping import codings as c
from reko_fhir.store import MATCH_LIMIT, Partitions, Search, SqlRepository
from reko_fhir.store.bulk import bulk_load
from reko_fhir.store.repository import months

PG_DSN = "postgresql://postgres@127.0.0.1:5432/test"
UNITS = ("SE2321000016-15CQ", "SE2321000016-7BN2")
PARTS = ("personligt-stod", "intern-samordning", "extern-samverkan")
MONTH = months("2026-06", "2026-06")


def _procedures(rng: random.Random, count: int, patients: list[str]) -> Iterator[dict[str, Any]]:
    for _ in range(count):
        day = date(2026, 1, 1) + timedelta(days=rng.randrange(365))
        code = rng.choices(["GC001", "DV077", "AW026", "DV076"], [6, 2, 2, 1])[0]
        procedure: dict[str, Any] = {
            "resourceType": "Procedure",
            "id": str(uuid.uuid4()),
            "status": rng.choices(["completed", "in-progress"], [9, 1])[0],
            "code": {"coding": [{"system": c.KVA, "code": code}]},
            "subject": {"reference": rng.choice(patients)},
            "performedDateTime": f"{day.isoformat()}T{rng.randrange(7, 18):02d}:00:00+02:00",
        }
        if rng.random() < 0.8:
            procedure["category"] = {"coding": [{"system": c.CS_PART, "code": rng.choice(PARTS)}]}
        yield procedure


def _cases(rng: random.Random, patients: list[str]) -> Iterator[dict[str, Any]]:
    for patient in patients:
        start = date(2026, 1, 1) + timedelta(days=rng.randrange(365))
        sick = start - timedelta(days=rng.randrange(120))
        yield {
            "resourceType": "EpisodeOfCare",
            "status": "active",
            "type": [{"coding": [{"system": c.KVA, "code": "GC001"}]}],
            "patient": {"reference": patient},
            "period": {"start": start.isoformat()},
            "extension": [
                {
                    "url": c.EXT_SICK_LEAVE,
                    "extension": [{"url": "start", "valueDate": sick.isoformat()}],
                }
            ],
        }
        if rng.random() < 0.5:
            sent = start + timedelta(days=rng.randrange(60))
            yield {
                "resourceType": "Communication",
                "status": "completed",
                "category": [
                    {
                        "coding": [
                            {
                                "system": c.CS_COMMUNICATION_CATEGORY,
                                "code": "rehabiliteringsbehov",
                            }
                        ]
                    }
                ],
                "subject": {"reference": patient},
                "sent": f"{sent.isoformat()}T10:00:00+01:00",
            }


async def fill(store: SqlRepository, rows: int) -> None:
    rng = random.Random(14)  # noqa: S311 - a seeded fill, not a secret
    started = time.perf_counter()
    for unit in UNITS:
        patients = [f"Patient/{uuid.uuid4()}" for _ in range(rows // len(UNITS) // 25)]
        await bulk_load(store, _procedures(rng, rows // len(UNITS), patients), partition=unit)
        await bulk_load(store, _cases(rng, patients), partition=unit)
    print(f"  filled {rows:,} Procedures in {time.perf_counter() - started:.0f} s")


def searches() -> list[tuple[str, tuple[tuple[str, str], ...]]]:
    month = MONTH[0]
    span = (("date", f"ge{month.start:%Y-%m-%d}"), ("date", f"lt{month.end:%Y-%m-%d}"))
    gc001 = (("code", f"{c.KVA}|GC001"), ("status", "completed"), *span)
    asked = [
        ("Procedure", (("code", f"{c.KVA}|{code}"), ("status", "completed"), *span))
        for code in ("GC001", "DV077", "AW026")
    ]
    asked += [("Procedure", (*gc001, ("category", f"{c.CS_PART}|{p}"))) for p in PARTS]
    notices = (
        ("category", f"{c.CS_COMMUNICATION_CATEGORY}|rehabiliteringsbehov"),
        ("sent", f"ge{month.start:%Y-%m-%d}"),
        ("sent", f"lt{month.end:%Y-%m-%d}"),
    )
    return [*asked, ("Communication", notices)]


async def timed(work: Callable[[], Awaitable[Any]]) -> float:
    started = time.perf_counter()
    await work()
    return time.perf_counter() - started


async def measure(name: str, url: str, args: argparse.Namespace) -> None:
    print(f"{name}:")
    store = await SqlRepository.open(url)
    try:
        await fill(store, args.rows)
        unit = store.scoped(Partitions.of_unit(UNITS[0]))

        async def stats() -> Any:
            return await unit.kva_counts(MONTH)

        async def counted() -> list[int]:
            return [
                await unit.total(kind, Search(params, MATCH_LIMIT)) for kind, params in searches()
            ]

        # The same numbers, or the comparison is of different work.
        found = {(r.group, r.stratum): r.count for r in await stats()}
        totals = await counted()
        assert totals[:3] == [found[(g, None)] for g in ("gc001", "dv077", "aw026")], totals
        assert totals[3:6] == [found[("gc001", p)] for p in PARTS], totals
        assert totals[6] == found[("meddelanden-fk", None)], totals
        stat_times, search_times = [], []
        for _ in range(args.repeat):  # interleaved, so both see the same machine
            stat_times.append(await timed(stats))
            search_times.append(await timed(counted))
        s, q = statistics.median(stat_times), statistics.median(search_times)
        print(f"  one unit-month: GC001 {totals[0]}, DV077 {totals[1]}, AW026 {totals[2]}")
        print(f"  stats (7 groups, 4 queries):      {s * 1000:8.1f} ms (median of {args.repeat})")
        print(f"  _summary=count searches (7):      {q * 1000:8.1f} ms")
        print(f"  ratio stats / searches:           {s / q:8.2f}")
    finally:
        await store.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--databases", nargs="+", default=["sqlite", "postgresql"])
    args = parser.parse_args()
    for name in args.databases:
        if name == "sqlite":
            with tempfile.TemporaryDirectory() as folder:
                database = Path(folder) / "stats.sqlite3"
                await measure("SQLite", f"sqlite+aiosqlite:///{database}", args)
        else:
            schema = f"reko_bench_{uuid.uuid4().hex[:8]}"
            with psycopg.connect(PG_DSN, autocommit=True) as conn:
                conn.execute(f'CREATE SCHEMA "{schema}"')
            url = f"{PG_DSN}?options=-csearch_path%3D{schema}"
            try:
                await measure(
                    "PostgreSQL", url.replace("postgresql://", "postgresql+psycopg://"), args
                )
            finally:
                with psycopg.connect(PG_DSN, autocommit=True) as conn:
                    conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


if __name__ == "__main__":
    asyncio.run(main())
