"""``reko-fhir worklist --unit HSA-ID``: the care unit's early-identification worklist.

Read through the guard as the unit, as a search of ``GET /Task`` would be, and logged in the
access log. Shown to the coordinator with the patients' personnummer (they call them with it);
nothing of it goes to the logs.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
from enum import StrEnum
from typing import Annotated

import typer

from reko_fhir.cli_delivery import _with_store
from reko_fhir.domain.errors import DomainError
from reko_fhir.domain.identifiers import HsaId, mask_patient_ids
from reko_fhir.outcomes import OperationOutcomeError
from reko_fhir.security.audit import AuditLog
from reko_fhir.store.sql import SqlRepository
from reko_fhir.worklist.listing import EVERY_STATUS, WorklistRow, read_worklist

HEADINGS = ("Start", "Days", "Degree %", "Patient", "Task", "REKO status", "Rehabstöd", "Reason")


class WorklistFormat(StrEnum):
    TABLE = "table"
    CSV = "csv"
    JSON = "json"


class TaskStatus(StrEnum):
    REQUESTED = "requested"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    ALL = EVERY_STATUS


def worklist_command(
    unit: Annotated[str, typer.Option(help="The care unit's HSA-id.")],
    output_format: Annotated[
        WorklistFormat, typer.Option("--format", "-f", help="A table, CSV or JSON.")
    ] = WorklistFormat.TABLE,
    status: Annotated[
        TaskStatus, typer.Option(help="Only Tasks with this status (all: every one).")
    ] = TaskStatus.REQUESTED,
) -> None:
    """The care unit's sick-listed patients to assess for coordination, by sick-leave start."""
    try:
        care_unit = HsaId(unit)
    except DomainError:
        shown = mask_patient_ids(unit[:40])
        typer.echo(f"reko-fhir: --unit is a care unit's HSA-id, not '{shown}'", err=True)
        raise typer.Exit(2) from None

    async def run(repository: SqlRepository) -> list[WorklistRow]:
        audit = AuditLog(repository.transaction)
        try:
            return await read_worklist(repository, care_unit, status=status.value, log=audit.record)
        finally:
            await audit.close()

    try:
        rows = asyncio.run(_with_store(run))
    except OperationOutcomeError as failure:
        typer.echo(f"reko-fhir: {'; '.join(i.diagnostics for i in failure.issues)}", err=True)
        raise typer.Exit(1) from None
    typer.echo(render(rows, output_format), nl=False)


def render(rows: list[WorklistRow], output_format: WorklistFormat) -> str:
    if output_format is WorklistFormat.JSON:
        return json.dumps([r.as_dict() for r in rows], ensure_ascii=False, indent=2) + "\n"
    if output_format is WorklistFormat.CSV:
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=list(rows[0].as_dict()) if rows else ["task"])
        writer.writeheader()
        writer.writerows(r.as_dict() for r in rows)
        return out.getvalue()
    lines = [HEADINGS] + [
        (
            r.start,
            str(r.days if r.days is not None else ""),
            str(r.degree if r.degree is not None else ""),
            r.patient,
            r.status,
            r.reko_status.value,
            r.reko_status.rehabstod_id,
            r.reason or "",
        )
        for r in rows
    ]
    widths = [max(len(line[i]) for line in lines) for i in range(len(HEADINGS))]
    text = "\n".join(
        "  ".join(v.ljust(w) for v, w in zip(line, widths, strict=True)).rstrip() for line in lines
    )
    return f"{text}\n{len(rows)} sick leave(s)\n"
