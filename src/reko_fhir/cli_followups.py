"""``reko-fhir follow-ups --unit HSA-ID --due-before DATE``: a care unit's planned follow-ups that
are due or overdue.

The follow-ups are the open AW026 and GC001 activities (:mod:`reko_fhir.mapping.followups`) of
the unit's active CarePlans whose first scheduled day lies before ``--due-before``. They are
read as the unit reads them over FHIR — the search ``CarePlan?activity-date=lt<DATE>&status=active``
(https://hl7.org/fhir/R4/careplan.html#search) through the guarded repository, in the unit's
partition only — and the access is logged as an AuditEvent before anything is printed (an
access that cannot be logged shows nothing). R4's ``activity-date`` matches a plan when *any*
activity is scheduled then, done or not; which of its activities are still open is then read
from each plan's ``detail.status``.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Annotated, Any

import typer

from reko_fhir.config import Settings
from reko_fhir.domain.errors import DomainError
from reko_fhir.domain.identifiers import HsaId
from reko_fhir.mapping import codings as c
from reko_fhir.mapping.followups import FOLLOW_UP_CODES, due_activities
from reko_fhir.outcomes import OperationOutcomeError
from reko_fhir.security.audit import MOST_ENTITIES, AccessRecord, AuditLog, AuditWriteError
from reko_fhir.security.guard import Caller, GuardedRepository, ScopeCheck
from reko_fhir.security.scopes import Scopes
from reko_fhir.security.tokens import Principal
from reko_fhir.store import Partitions, Search, Stored
from reko_fhir.store.sql import SqlRepository

Json = dict[str, Any]
PAGE = 200
CLIENT = "reko-fhir follow-ups"


class Format(StrEnum):
    TABLE = "table"
    CSV = "csv"
    JSON = "json"


@dataclass(frozen=True, slots=True)
class FollowUp:
    """One row: an open planned activity, when it is due, whose plan it is."""

    due: date | None
    code: str
    status: str
    patient: str
    plan: str
    activity: int
    description: str | None

    def row(self, today: date) -> dict[str, Any]:
        return {
            "due": self.due.isoformat() if self.due else "",
            "overdue": self.due is not None and self.due < today,
            "code": self.code,
            "status": self.status,
            "patient": self.patient,
            "careplan": self.plan,
            "activity": self.activity,
            "description": self.description or "",
        }


def _personnummer(patient: Stored | None) -> str | None:
    for ident in (patient.resource.get("identifier") or []) if patient else []:
        if isinstance(ident, dict) and ident.get("system") in c.PATIENT_ID_SYSTEMS.values():
            value = ident.get("value")
            return value if isinstance(value, str) else None
    return None


async def due_follow_ups(
    repository: SqlRepository, unit: str, due_before: date, codes: frozenset[str], user: str
) -> list[FollowUp]:
    """The unit's open follow-ups of ``codes`` due before ``due_before``, earliest first; read
    through the guard as ``user`` of ``unit`` and logged in the access log."""
    principal = Principal(user, Scopes.parse("user/CarePlan.rs user/Patient.rs"), unit, None)
    partitions = Partitions.of_unit(unit)
    params: tuple[tuple[str, str], ...] = (
        ("activity-date", f"lt{due_before.isoformat()}"),
        ("status", "active"),
    )
    if len(codes) == 1:
        params += (("activity-code", f"{c.KVA}|{next(iter(codes))}"),)
    record = AccessRecord(
        "R", "search-type", 200, user, unit, CLIENT, None, (), (),
        "CarePlan?" + "&".join(f"{k}={v}" for k, v in params), datetime.now(UTC),
    )  # fmt: skip
    guarded = GuardedRepository(
        repository.scoped(partitions), Caller(principal, record, partitions)
    )
    checks = ScopeCheck(principal)
    checks.allow("CarePlan", "search-type")
    plans: list[Stored] = []
    while True:
        page = await guarded.search("CarePlan", Search(params, PAGE, len(plans), ("_id",)))
        plans += page
        if len(page) < PAGE:
            break
    found = [
        FollowUp(
            due.due,
            due.code,
            due.status,
            str((plan.resource.get("subject") or {}).get("reference", "")),
            f"CarePlan/{plan.id}",
            due.index,
            due.description,
        )
        for plan in plans
        for due in due_activities(plan.resource)
        if due.code in codes and due.due is not None and due.due < due_before
    ]
    patients = sorted({f.patient for f in found if f.patient.startswith("Patient/")})
    checks.allow("Patient", "read")
    read = await guarded.read_current("Patient", [p.split("/", 1)[1] for p in patients])
    numbers = {f"Patient/{s.id}": _personnummer(s) for s in read}
    log = AuditLog(repository.transaction)
    try:
        entities = tuple(sorted({f.plan for f in found}))[:MOST_ENTITIES]
        await log.record(
            replace(record, patients=tuple(patients), entities=entities, recorded=datetime.now(UTC))
        )
    finally:
        await log.close()
    rows = [replace(f, patient=numbers.get(f.patient) or f.patient) for f in found]
    return sorted(rows, key=lambda f: (f.due or date.max, f.plan, f.activity))


def render(rows: list[FollowUp], form: Format, today: date) -> str:
    """The rows as an aligned table, CSV or JSON."""
    table = [r.row(today) for r in rows]
    if form is Format.JSON:
        return json.dumps(table, ensure_ascii=False, indent=2)
    for row in table:  # as a person reads it: "yes" or nothing
        row["overdue"] = "yes" if row["overdue"] else ""
    columns = ["due", "overdue", "code", "status", "patient", "careplan", "activity", "description"]
    if form is Format.CSV:
        out = io.StringIO()
        writer = csv.DictWriter(out, columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(table)
        return out.getvalue().rstrip("\n")
    cells = [columns] + [[str(v) for v in r.values()] for r in table]
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(line.rstrip() for line in lines) + f"\n{len(rows)} follow-up(s) due"


def follow_ups_command(
    unit: Annotated[str, typer.Option(help="The care unit's HSA-id.")],
    due_before: Annotated[
        str, typer.Option(help="List what is scheduled before this day (YYYY-MM-DD).")
    ],
    output: Annotated[Format, typer.Option("--format", help="table, csv or json.")] = Format.TABLE,
    code: Annotated[
        str | None, typer.Option(help="Only AW026 (follow-ups) or GC001 (planned coordination).")
    ] = None,
    user: Annotated[
        str | None,
        typer.Option(help="HSA-id of who reads, for the access log (default: the unit)."),
    ] = None,
) -> None:
    """The care unit's planned AW026 and GC001 activities due before a day, overdue marked."""
    try:
        HsaId(unit)
    except DomainError:
        typer.echo(f"reko-fhir: --unit is a care unit's HSA-id, not '{unit[:40]}'", err=True)
        raise typer.Exit(2) from None
    try:
        day = date.fromisoformat(due_before)
    except ValueError:
        typer.echo(
            f"reko-fhir: --due-before is a day (YYYY-MM-DD), not '{due_before[:40]}'", err=True
        )
        raise typer.Exit(2) from None
    if code is not None and code not in FOLLOW_UP_CODES:
        typer.echo(f"reko-fhir: --code is AW026 or GC001, not '{code[:40]}'", err=True)
        raise typer.Exit(2)
    codes = frozenset({code}) if code else FOLLOW_UP_CODES

    async def run() -> list[FollowUp]:
        settings = Settings()
        if not settings.database_url:
            settings.data_dir.mkdir(parents=True, exist_ok=True)
        repository = await SqlRepository.open(settings.sqlalchemy_url())
        try:
            return await due_follow_ups(repository, unit, day, codes, user or unit)
        finally:
            await repository.close()

    try:
        rows = asyncio.run(run())
    except (OperationOutcomeError, AuditWriteError) as failure:
        typer.echo(f"reko-fhir: {failure}", err=True)
        raise typer.Exit(1) from None
    typer.echo(render(rows, output, datetime.now(UTC).date()))
