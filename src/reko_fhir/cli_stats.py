"""``reko-fhir stats``: the KVÅ statistics of a care unit (or of every unit) per month.

The same counts as ``Measure/kva-statistik/$evaluate-measure`` (:mod:`reko_fhir.rest.measure`),
read from the store the service uses (``REKO_DATABASE_URL`` or ``REKO_DATA_DIR``): one row per
unit and month, as a table, CSV, JSON, or FHIR (a Bundle of summary MeasureReports).
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
from collections import defaultdict
from datetime import timedelta
from enum import StrEnum
from typing import Annotated, Any

import typer

from reko_fhir.config import Settings
from reko_fhir.domain.errors import DomainError
from reko_fhir.domain.identifiers import HsaId
from reko_fhir.mapping import codings as c
from reko_fhir.rest.measure import measure_report
from reko_fhir.store import EVERY, Partitions
from reko_fhir.store.repository import KVA_GROUPS, Bucket, KvaCount, months
from reko_fhir.store.sql import SqlRepository

PARTS = ("personligt-stod", "intern-samordning", "extern-samverkan")
"""The codes of ``reko-coordination-part``: GC001's strata, a column each."""
MOST_MONTHS = 120
EXIT_USAGE = 2
Row = dict[str, Any]


class StatsFormat(StrEnum):
    TABLE = "table"
    CSV = "csv"
    JSON = "json"
    FHIR = "fhir"


class By(StrEnum):
    MONTH = "month"
    PERIOD = "period"


def _usage(message: str) -> typer.Exit:
    typer.echo(f"reko-fhir: {message}", err=True)
    return typer.Exit(EXIT_USAGE)


def stats_command(
    unit: Annotated[
        str, typer.Option(help="The care unit's HSA-id, or 'all' (a row per unit and month).")
    ],
    first: Annotated[str, typer.Option("--from", help="The first month, YYYY-MM.")],
    last: Annotated[str, typer.Option("--to", help="The last month, YYYY-MM (included).")],
    by: Annotated[
        By, typer.Option(help="A row per month, or one for the whole period.")
    ] = By.MONTH,
    output: Annotated[StatsFormat, typer.Option("--format", help="How to print.")] = (
        StatsFormat.TABLE
    ),
) -> None:
    """Print the KVÅ statistics (GC001 by part, DV077, AW026, patients, new cases, within 90
    days, notices to Försäkringskassan) of the Measure kva-statistik."""
    if unit != "all":
        try:
            HsaId(unit)
        except DomainError:
            raise _usage(f"--unit is a care unit's HSA-id or 'all', not '{unit[:40]}'") from None
    buckets = _buckets(first, last, by)
    partitions = EVERY if unit == "all" else Partitions.of_unit(unit)
    counts = asyncio.run(_counts(partitions, buckets))
    units = sorted({row.unit for row in counts}) if unit == "all" else [unit]
    rows = rows_of(counts, units, buckets)
    if output is StatsFormat.FHIR:
        typer.echo(json.dumps(_bundle(counts, units, buckets), ensure_ascii=False, indent=2))
    elif output is StatsFormat.JSON:
        typer.echo(json.dumps(rows, ensure_ascii=False, indent=2))
    else:
        typer.echo(_csv(rows) if output is StatsFormat.CSV else _table(rows), nl=False)


def _buckets(first: str, last: str, by: By) -> list[Bucket]:
    try:
        found = months(first, last) if _is_month(first) and _is_month(last) else []
    except ValueError:
        found = []
    if not found and _is_month(first) and _is_month(last) and first > last:
        raise _usage(f"--from {first} is after --to {last}")
    if not found:
        raise _usage(f"--from and --to are months, YYYY-MM (not '{first[:20]}', '{last[:20]}')")
    if len(found) > MOST_MONTHS:
        raise _usage(f"at most {MOST_MONTHS} months at a time")
    if by is By.PERIOD:
        return [Bucket(f"{first}/{last}", found[0].start, found[-1].end)]
    return found


def _is_month(text: str) -> bool:
    return (
        len(text) == 7
        and text[4] == "-"
        and text[:4].isdigit()
        and text[5:].isdigit()
        and 1 <= int(text[5:]) <= 12
        and int(text[:4]) >= 1
    )


async def _counts(partitions: Partitions, buckets: list[Bucket]) -> list[KvaCount]:
    settings = Settings()
    if not settings.database_url:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    store = await SqlRepository.open(settings.sqlalchemy_url())
    try:
        return await store.scoped(partitions).kva_counts(buckets)
    finally:
        await store.close()


def rows_of(counts: list[KvaCount], units: list[str], buckets: list[Bucket]) -> list[Row]:
    """One row per unit and bucket: every group, and GC001 per part (``gc001/<part>``)."""
    found: dict[tuple[str, str, str], int] = defaultdict(int)
    for row in counts:
        column = row.group if row.stratum is None else f"{row.group}/{row.stratum}"
        found[(row.unit, row.bucket, column)] = row.count
    columns = [*KVA_GROUPS[:1], *(f"gc001/{p}" for p in PARTS), *KVA_GROUPS[1:]]
    return [
        {"unit": u, "period": b.label, **{col: found[(u, b.label, col)] for col in columns}}
        for u in units
        for b in buckets
    ]


def _csv(rows: list[Row]) -> str:
    out = io.StringIO()
    if rows:
        writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return out.getvalue()


def _table(rows: list[Row]) -> str:
    if not rows:
        return "no care unit has statistics in the period\n"
    names = list(rows[0])
    cells = [[str(r[n]) for n in names] for r in rows]
    widths = [max(len(n), *(len(row[i]) for row in cells)) for i, n in enumerate(names)]
    lines = [names, *cells]
    return "".join(
        "  ".join(
            cell.ljust(width) if i < 2 else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(line, widths, strict=True))
        ).rstrip()
        + "\n"
        for line in lines
    )


def _bundle(counts: list[KvaCount], units: list[str], buckets: list[Bucket]) -> dict[str, Any]:
    """A collection Bundle of summary MeasureReports, one per unit and bucket."""
    reports = []
    for unit in units:
        for bucket in buckets:
            mine = [r for r in counts if r.unit == unit and r.bucket == bucket.label]
            last_day = bucket.end - timedelta(days=1)
            period = {"start": f"{bucket.start:%Y-%m-%d}", "end": f"{last_day:%Y-%m-%d}"}
            subject = {"identifier": c.identifier(c.HSA, unit)}
            reports.append({"resource": measure_report(mine, period, subject)})
    bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "collection"}
    if reports:
        bundle["entry"] = reports
    return bundle
