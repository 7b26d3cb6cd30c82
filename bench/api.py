"""Benchmark: the FHIR service on loopback with 2 worker processes, SQLite and PostgreSQL.

Run by hand: ``python bench/api.py [--seconds 10] [--concurrency 16] [--rows 1000000]``.
Not a test. For each database it starts ``uvicorn --workers 2`` on a fresh store, then measures
with concurrent HTTP clients:

- validated, committed writes/s (POST Procedure, each validated against the reko profile and
  the consent rules against the store) with p50/p99 latency;
- case transaction Bundles (golden case a, 17 entries): committed resources/s, each Bundle with
  new identifiers (a new patient and case; the unit's Organizations and PractitionerRoles are
  the same, unchanged, in every one), and the same Bundle resent (every entry a no-op);
- reads/s (GET Procedure/{id}) with p50/p99;
- the baseline, in the same run: GET /metadata (no store, no validation) — ratios are against it;
- p50/p99 of a patient search (4 clients), for the case's patient with its few Procedures, and
  again after the writes have given that patient hundreds more.

At the end, the Bundle rows' p99 on PostgreSQL against SQLite's (run both databases in one run).

``--search-only [N]`` measures just the baseline and the two patient searches: the patient's
many matches (N, default 1,100, as the writes give it) are then bulk-loaded, not written
through the API — a quick look at search alone.

Every figure is taken after ``--rows`` Procedures of other patients are stored, first:
bulk-loaded with :func:`reko_fhir.store.bulk.bulk_load`, which writes the rows a create writes
(not validated), a batch of 5,000 per transaction. The fill's time is printed too.

PostgreSQL is 127.0.0.1:5432 database ``test`` (a schema of its own, dropped afterwards).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import psycopg

from reko_fhir.config import Settings
from reko_fhir.security.tokens import LocalSigningKey
from reko_fhir.store import SqlRepository
from reko_fhir.store.bulk import bulk_load

ROOT = Path(__file__).resolve().parent.parent
PG_DSN = "postgresql://postgres@127.0.0.1:5432/test"
GOLDEN = json.loads(
    (ROOT / "fixtures/mapping/a-primary-care/expected.json").read_text(encoding="utf-8")
)


CASE_ENTRIES = len(GOLDEN["entry"])
CASE_IDS = ("REKO-2025-0042", "SAM-0042-1", "PLAN-0042-1", "J-88")


def personnummer(n: int) -> str:
    """A valid personnummer (Luhn) for ``n``: a birth date in 1930-1999, a serial from ``n``."""
    yymmdd = f"{30 + n % 70:02d}{1 + n // 70 % 12:02d}{1 + n // 840 % 28:02d}"
    digits = f"{yymmdd}{n // 23520 % 1000:03d}"
    total = 0
    for i, d in enumerate(digits):
        doubled = int(d) * (2 if i % 2 == 0 else 1)
        total += doubled - 9 if doubled > 9 else doubled
    return f"19{digits}{(10 - total % 10) % 10}"


def new_case(n: int, run: str) -> dict[str, Any]:
    """Golden case a as a new patient's case: a new personnummer and new case identifiers
    (references are the Bundle's urn:uuid fullUrls, so they follow)."""
    text = json.dumps(GOLDEN).replace("197804122385", personnummer(n))
    for value in CASE_IDS:
        text = text.replace(value, f"{value}-{run}{n}")
    case: dict[str, Any] = json.loads(text)
    return case


# A care unit's token (case a's unit): every request pays for checking it, the unit filter
# and the access log, as a real client's would.
AUTH: dict[str, str] = {}
UNIT = "SE2321000016-VC01"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start_server(env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "reko_fhir.api.app:create_app",
        "--factory",
        "--workers",
        "2",
        "--port",
        str(port),
        "--no-access-log",
        "--log-level",
        "warning",
    ]
    process = subprocess.Popen(command, env={**os.environ, **env}, stdout=subprocess.DEVNULL)
    for _ in range(300):
        try:
            httpx.get(f"http://127.0.0.1:{port}/metadata", timeout=1).raise_for_status()
            return process
        except httpx.HTTPError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit("the server did not start")


async def load(
    work: Callable[[httpx.AsyncClient, int], Awaitable[None]],
    seconds: float,
    concurrency: int,
    base: str,
    headers: dict[str, str] | None = None,
) -> tuple[float, list[float]]:
    """Requests/s and latencies (ms) of ``work`` run by ``concurrency`` clients for ``seconds``."""
    latencies: list[float] = []
    stop = time.perf_counter() + seconds

    async def client(number: int) -> None:
        async with httpx.AsyncClient(
            base_url=base, timeout=30, headers=AUTH if headers is None else headers
        ) as http:
            i = 0
            while time.perf_counter() < stop:
                started = time.perf_counter()
                await work(http, number * 1_000_000 + i)
                latencies.append((time.perf_counter() - started) * 1000)
                i += 1

    started = time.perf_counter()
    await asyncio.gather(*(client(n) for n in range(concurrency)))
    return len(latencies) / (time.perf_counter() - started), latencies


def pct(values: list[float], q: float) -> float:
    return (
        statistics.quantiles(values, n=100)[int(q) - 1] if len(values) > 1 else (values or [0.0])[0]
    )


async def seed_case(base: str) -> tuple[dict[str, Any], str]:
    """Store golden case a through the API; return a Procedure template and the patient ref."""
    async with httpx.AsyncClient(base_url=base, timeout=60, headers=AUTH) as http:
        answer = await http.post(
            "/", json=GOLDEN, headers={"content-type": "application/fhir+json"}
        )
        answer.raise_for_status()
        procedures = (await http.get("/Procedure", params={"_count": "1"})).json()["entry"]
    template = procedures[0]["resource"]
    for key in ("id", "meta"):
        template.pop(key)
    return template, template["subject"]["reference"]


async def bulk_rows(url: str, template: dict[str, Any], rows: int) -> int:
    """``rows`` Procedures of other patients, bulk-loaded (the same rows a create writes);
    returns how many Procedures the store then holds."""
    repository = await SqlRepository.open(url)
    try:
        await bulk_load(
            repository,
            (
                {
                    **template,
                    "identifier": [{"system": "urn:oid:1.2.752.9999.9", "value": uuid.uuid4().hex}],
                    "subject": {"reference": f"Patient/{uuid.uuid4()}"},
                }
                for _ in range(rows)
            ),
            partition=UNIT,  # the unit's own partition: its searches and reads walk them
        )
        return await repository.count("Procedure")
    finally:
        await repository.close()


async def add_matches(url: str, template: dict[str, Any], count: int) -> None:
    """``count`` more Procedures of the template's patient, bulk-loaded in the unit."""
    repository = await SqlRepository.open(url)
    try:
        procedures = (
            {
                **template,
                "identifier": [{"system": "urn:oid:1.2.752.9999.1", "value": uuid.uuid4().hex}],
            }
            for _ in range(count)
        )
        await bulk_load(repository, procedures, partition=UNIT)
    finally:
        await repository.close()


async def fill_store(store_url: str, template: dict[str, Any], rows: int) -> str:
    """Bulk-load ``rows`` Procedures of other patients; a line saying how long it took."""
    started = time.perf_counter()
    stored = await bulk_rows(store_url, template, rows)
    filled = time.perf_counter() - started
    if stored < rows:
        raise SystemExit(f"only {stored} Procedures stored, not {rows}")
    return (
        f"  (bulk-loaded {rows:,} Procedures of other patients in {filled:.0f} s, "
        f"{rows / filled:,.0f}/s; the store holds {stored:,} Procedures)"
    )


RESULTS: dict[str, list[dict[str, Any]]] = {}
"""Every row reported, per database: what ``--json`` prints (bench/speed.py reads it)."""


async def post_case(http: httpx.AsyncClient, bundle: dict[str, Any]) -> None:
    answer = await http.post("/", json=bundle, headers={"prefer": "return=minimal"})
    statuses = [e["response"]["status"] for e in answer.json().get("entry", [])]
    if answer.status_code != 200 or len(statuses) != CASE_ENTRIES:
        raise SystemExit(f"case Bundle failed: {answer.status_code} {answer.text[:300]}")
    if not all(s.startswith(("200", "201")) for s in statuses):
        raise SystemExit(f"case Bundle entry failed: {statuses}")


async def case_rows(base: str, args: argparse.Namespace) -> list[tuple[str, float, list[float]]]:
    """Case Bundles: each a new patient's case, then the same one resent, as committed
    resources/s (every entry of a Bundle answered 200/201 is one)."""
    found: list[tuple[str, float, list[float]]] = []
    run = uuid.uuid4().hex[:6]

    async def case_bundle(http: httpx.AsyncClient, n: int) -> None:
        await post_case(http, new_case(n, run))

    async def resend(http: httpx.AsyncClient, _: int) -> None:
        await post_case(http, GOLDEN)

    rate, lat = await load(case_bundle, args.seconds, args.concurrency, base)
    found.append(("case Bundles, new patients: resources/s", rate * CASE_ENTRIES, lat))
    rate, lat = await load(resend, args.seconds, args.concurrency, base)
    found.append(("case Bundles, resent: resources/s", rate * CASE_ENTRIES, lat))
    return found


def report(
    name: str, args: argparse.Namespace, fill: str, rows: list[tuple[str, float, list[float]]]
) -> None:
    RESULTS[name.split(maxsplit=1)[0].lower()] = [
        {"label": label, "rate": rate, "p50": pct(lat, 50), "p99": pct(lat, 99)}
        for label, rate, lat in rows
    ]
    base_rate = rows[0][1]
    print(
        f"\n{name}: 2 workers, {args.concurrency} concurrent clients (searches 4), "
        f"{args.seconds:.0f} s each"
    )
    if fill:
        print(fill)
    print(f"{'':42} {'rate/s':>8} {'ratio':>7} {'p50 ms':>8} {'p99 ms':>8}")
    for label, rate, lat in rows:
        print(
            f"{label:42} {rate:8.0f} {rate / base_rate:7.3f} {pct(lat, 50):8.1f} {pct(lat, 99):8.1f}"
        )


async def measure(
    name: str, env: dict[str, str], store_url: str, args: argparse.Namespace
) -> dict[str, float]:
    """Every row for one database; returns each row's p99 (ms)."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = start_server(env, port)
    key = LocalSigningKey.load_or_create(Path(env["REKO_DATA_DIR"]))
    token = key.mint("system/*.cruds", subject=UNIT, care_unit=UNIT, lifetime=24 * 3600)
    AUTH["authorization"] = f"Bearer {token}"
    try:
        template, patient = await seed_case(base)
        fill = await fill_store(store_url, template, args.rows) if args.rows else ""
        created: list[str] = []

        async def metadata(http: httpx.AsyncClient, _: int) -> None:
            (await http.get("/metadata")).raise_for_status()

        async def write(http: httpx.AsyncClient, n: int) -> None:
            procedure = {
                **template,
                "identifier": [{"system": "urn:oid:1.2.752.9999.1", "value": f"B-{n}"}],
            }
            answer = await http.post(
                "/Procedure", json=procedure, headers={"prefer": "return=minimal"}
            )
            if answer.status_code != 201:
                raise SystemExit(f"write failed: {answer.status_code} {answer.text[:300]}")
            created.append(answer.headers["location"].split("/")[1])

        async def read(http: httpx.AsyncClient, n: int) -> None:
            (await http.get(f"/Procedure/{created[n % len(created)]}")).raise_for_status()

        async def search(http: httpx.AsyncClient, _: int) -> None:
            (
                await http.get("/Procedure", params={"patient": patient, "_count": "20"})
            ).raise_for_status()

        async def matches() -> int:
            async with httpx.AsyncClient(base_url=base, timeout=60, headers=AUTH) as http:
                answer = await http.get("/Procedure", params={"patient": patient, "_count": "1"})
            total: int = answer.json()["total"]
            return total

        rows: list[tuple[str, float, list[float]]] = []
        base_rate, base_lat = await load(metadata, args.seconds, args.concurrency, base)
        rows.append(("GET /metadata (baseline)", base_rate, base_lat))
        # The case's own patient first, with the few Procedures a coordination case has …
        few = await matches()
        rows.append((f"patient search, {few} matches", *await load(search, args.seconds, 4, base)))
        if args.search_only:
            await add_matches(store_url, template, args.search_only)
            many = await matches()
            rows.append(
                (f"patient search, {many:,} matches", *await load(search, args.seconds, 4, base))
            )
            report(name, args, fill, rows)
            return {label: pct(lat, 99) for label, _, lat in rows}
        rows.append(
            (
                "validated POST /Procedure",
                *await load(write, args.seconds, args.concurrency, base),
            )
        )
        rows += await case_rows(base, args)
        rows.append(
            ("read (GET Procedure/id)", *await load(read, args.seconds, args.concurrency, base))
        )
        # The same reads by a platform token: no care-unit filter, so the filter's cost shows.
        platform = key.mint("system/*.rs", subject=UNIT, all_units=True, lifetime=24 * 3600)
        open_rate, open_lat = await load(
            read, args.seconds, args.concurrency, base, {"authorization": f"Bearer {platform}"}
        )
        rows.append(("read, platform token (no unit filter)", open_rate, open_lat))
        # … then the same patient after the writes above: every match is counted for `total`.
        many = await matches()
        rows.append(
            (f"patient search, {many:,} matches", *await load(search, args.seconds, 4, base))
        )
        report(name, args, fill, rows)
        return {label: pct(lat, 99) for label, _, lat in rows}
    finally:
        server.terminate()
        server.wait(timeout=20)


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--only", choices=["sqlite", "postgresql"])
    parser.add_argument("--json", action="store_true", help="a last line of JSON: every row")
    parser.add_argument(
        "--search-only",
        type=int,
        nargs="?",
        const=1100,
        default=0,
        metavar="N",
        help="only the baseline and the patient searches, N matches bulk-loaded (1,100)",
    )
    args = parser.parse_args()
    p99: dict[str, dict[str, float]] = {}
    if args.only != "postgresql":
        with tempfile.TemporaryDirectory() as data:
            url = Settings(data_dir=Path(data)).sqlalchemy_url()
            p99["sqlite"] = await measure(
                "SQLite (embedded default)", {"REKO_DATA_DIR": data}, url, args
            )
    if args.only != "sqlite":
        schema = f"reko_bench_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(PG_DSN, autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{schema}"')
        database_url = f"{PG_DSN}?options=-csearch_path%3D{schema}"
        try:
            url = Settings(database_url=database_url).sqlalchemy_url()
            with tempfile.TemporaryDirectory() as data:
                env = {"REKO_DATABASE_URL": database_url, "REKO_DATA_DIR": data}
                p99["postgresql"] = await measure("PostgreSQL", env, url, args)
        finally:
            with psycopg.connect(PG_DSN, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
    if len(p99) == 2 and not args.search_only:
        print("\nPostgreSQL p99 / SQLite p99 (same run):")
        for label in (
            "case Bundles, new patients: resources/s",
            "case Bundles, resent: resources/s",
        ):
            sqlite, postgresql = p99["sqlite"][label], p99["postgresql"][label]
            print(f"  {label:42} {postgresql:8.1f} / {sqlite:8.1f} ms = {postgresql / sqlite:5.2f}")
    if args.json:
        print(json.dumps({"bench": "api", "rows": args.rows, "databases": RESULTS}))


if __name__ == "__main__":
    asyncio.run(main())
