"""``reko-fhir sick-leaves import|history``: the national sick-leave feed, by hand.

``import --unit HSA-ID`` asks ListActiveSickLeavesForCareUnit for the unit's active sick leaves
and brings its worklist up to date; ``history --unit HSA-ID --patient PNR`` shows a patient's
sick-leave cases at the unit (ListSickLeavesForCare). Both read ``REKO_NATIONAL_FILE``.
``history`` is a read of one patient's data: it is in the access log (an AuditEvent naming the
reader, the unit, the patient's local ``Patient/id`` where the unit has one, and the masked
number), written before anything is shown.

Exit codes: 0 done (warnings may be printed), 1 the service or the worklist refused (a fault,
a result code ERROR, a message breaking the contract: the line names the contract and the
element or faultcode), 2 the command or its configuration is wrong, 3 the service could not
be reached within the retry policy (try again later). Diagnoses are never read, so never
shown; personnummer appear on stdout for the coordinator, never in the logs.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated

import typer

from reko_fhir.cli_delivery import _with_store
from reko_fhir.config import Settings
from reko_fhir.delivery.national import (
    LIST_ACTIVE,
    LIST_FOR_CARE,
    NationalServices,
    NotConfiguredError,
    load_national,
)
from reko_fhir.delivery.rivta import SickLeaveCase
from reko_fhir.domain import DomainError, HsaId, PatientId, mask_patient_ids
from reko_fhir.logs import configure_logging
from reko_fhir.mapping import codings as c
from reko_fhir.outcomes import Issue
from reko_fhir.security.audit import AccessRecord, AuditLog, AuditWriteError
from reko_fhir.sick_leave_feed import FeedError, FeedResult, import_unit, patient_history
from reko_fhir.store import MATCH_LIMIT, Partitions, Search
from reko_fhir.store.sql import SqlRepository
from reko_fhir.worklist import WorklistSettings

sick_leaves_app = typer.Typer(
    help="The national sick-leave feed (Intygstjänsten, RIVTA).", no_args_is_help=True
)
HEADINGS = ("Start", "End", "Days", "Degree %", "Degrees", "Certificates", "Doctor")
CLIENT = "reko-fhir sick-leaves"


class Format(StrEnum):
    TEXT = "text"
    JSON = "json"


def _fail(message: str, code: int) -> typer.Exit:
    typer.echo(f"reko-fhir: {mask_patient_ids(message)}", err=True)
    return typer.Exit(code)


def _unit(value: str) -> HsaId:
    try:
        return HsaId(value)
    except DomainError:
        raise _fail(f"--unit is a care unit's HSA-id, not '{value[:40]}'", 2) from None


def _services(contract: str, unit: HsaId) -> NationalServices:
    """The configured services, once they can route ``contract`` for ``unit``."""
    path = Settings().national_file
    if path is None:
        raise _fail("set REKO_NATIONAL_FILE to the national services file", 2)
    services = NationalServices(load_national(path))  # the preflight has loaded it once already
    try:
        services.endpoint_for(contract, unit)
    except NotConfiguredError as exc:
        raise _fail(str(exc), 2) from None
    return services


def _warn(issues: tuple[Issue, ...]) -> None:
    for issue in issues:
        where = f"{issue.expression}: " if issue.expression else ""
        typer.echo(
            mask_patient_ids(f"{issue.severity.value}: {where}{issue.diagnostics}"), err=True
        )


@sick_leaves_app.command("import")
def import_command(
    unit: Annotated[str, typer.Option(help="The care unit's HSA-id.")],
    output_format: Annotated[
        Format, typer.Option("--format", "-f", help="A summary line or JSON.")
    ] = Format.TEXT,
) -> None:
    """Fetch the unit's active sick leaves (ListActiveSickLeavesForCareUnit) into its worklist."""
    care_unit = _unit(unit)
    services = _services(LIST_ACTIVE, care_unit)
    configure_logging()
    settings = WorklistSettings.from_settings(Settings())

    async def run(repository: SqlRepository) -> FeedResult:
        return await import_unit(repository, services, care_unit, settings=settings)

    try:
        result = asyncio.run(_with_store(run))
    except FeedError as exc:
        raise _fail(str(exc), exc.exit_code) from None
    _warn(result.issues)
    if result.result_code != "OK":
        typer.echo(
            mask_patient_ids(f"info: resultCode {result.result_code}: {result.comment or ''}"),
            err=True,
        )
    summary = result.summary()
    if output_format is Format.JSON:
        typer.echo(json.dumps(summary, ensure_ascii=False, indent=2))
        return
    closed = ", ".join(f"{n} {s}" for s, n in result.changes.closed.items())
    typer.echo(
        f"{care_unit}: {summary['certificates']} certificate(s), {summary['problems']} problem(s); "
        f"worklist: {summary['created']} created, {summary['updated']} updated, "
        f"{summary['unchanged']} unchanged, {summary['closed']} closed"
        + (f" ({closed})" if closed else "")
    )


def _row(case: SickLeaveCase) -> dict[str, object]:
    return {
        "start": case.start.isoformat(),
        "end": case.end.isoformat(),
        "days": case.length_days,
        "degree": case.active_degree,
        "degrees": list(case.degrees),
        "certificates": case.certificate_count,
        "doctor": case.issuer.value,
    }


async def log_history(
    repository: SqlRepository, unit: HsaId, person: PatientId, user: str
) -> AccessRecord:
    """The access log's record of a history read: the unit's own Patient with that number, if
    it has one (a patient the unit has never stored is named by the masked number only)."""
    system = c.PATIENT_ID_SYSTEMS[person.kind]
    search = Search((("identifier", f"{system}|{person.value}"),), MATCH_LIMIT)
    local = await repository.scoped(Partitions.of_unit(unit.value)).search("Patient", search)
    record = AccessRecord(
        "R", "search-type", 200, user, unit.value, CLIENT, None,
        tuple(f"Patient/{p.id}" for p in local), (),
        f"{LIST_FOR_CARE}?patient={person.masked}", datetime.now(UTC),
    )  # fmt: skip
    log = AuditLog(repository.transaction)
    try:
        await log.record(record)
    finally:
        await log.close()
    return record


@sick_leaves_app.command("history")
def history_command(
    unit: Annotated[str, typer.Option(help="The care unit's HSA-id.")],
    patient: Annotated[str, typer.Option(help="The patient's personnummer/samordningsnummer.")],
    output_format: Annotated[
        Format, typer.Option("--format", "-f", help="A table or JSON.")
    ] = Format.TEXT,
    max_days_between: Annotated[
        int, typer.Option(help="Days between certificates of one case (0-90).", min=0, max=90)
    ] = 5,
    user: Annotated[
        str | None,
        typer.Option(help="HSA-id of who reads, for the access log (default: the unit)."),
    ] = None,
) -> None:
    """A patient's sick-leave cases at the unit (ListSickLeavesForCare), latest first."""
    care_unit = _unit(unit)
    try:
        person = PatientId(patient)
    except DomainError as exc:
        raise _fail(f"--patient: {exc.message}", 2) from None
    services = _services(LIST_FOR_CARE, care_unit)
    configure_logging()

    async def run(repository: SqlRepository) -> tuple[list[SickLeaveCase], tuple[Issue, ...]]:
        found = await patient_history(
            services, care_unit, person, max_days_between=max_days_between
        )
        # Logged before it is shown: a read the log cannot hold is not shown at all.
        await log_history(repository, care_unit, person, user or care_unit.value)
        return found

    try:
        cases, issues = asyncio.run(_with_store(run))
    except FeedError as exc:
        raise _fail(str(exc), exc.exit_code) from None
    except AuditWriteError as exc:
        raise _fail(f"the access log could not be written: {exc}", 1) from None
    _warn(issues)
    rows = [_row(case) for case in cases]
    if output_format is Format.JSON:
        typer.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    lines = [HEADINGS] + [
        (
            str(r["start"]),
            str(r["end"]),
            str(r["days"]),
            "" if r["degree"] is None else str(r["degree"]),
            "/".join(str(d) for d in case.degrees),
            str(r["certificates"]),
            str(r["doctor"]),
        )
        for r, case in zip(rows, cases, strict=True)
    ]
    widths = [max(len(line[i]) for line in lines) for i in range(len(HEADINGS))]
    for line in lines:
        typer.echo("  ".join(v.ljust(w) for v, w in zip(line, widths, strict=True)).rstrip())
    typer.echo(f"{len(rows)} sick-leave case(s) of {person.masked} at {care_unit}")
