"""``reko-fhir validate``: FHIR resources against the reko or given profiles, reports for CI.

Exit 0 when no resource has an error, 1 when any has, 2 on usage errors or unreadable input.
The one-line summary (resources, errors, warnings, checks not decided) is printed on stdout even
when ``--output`` writes the report to a file; a progress bar goes to stderr, on a terminal only.
"""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from reko_fhir.outcomes import Issue, IssueCode, IssueSeverity

EXIT_PROBLEMS = 1
EXIT_USAGE = 2


class ReportFormat(StrEnum):
    TEXT = "text"
    JSON = "json"
    JUNIT = "junit"
    SARIF = "sarif"


class BestPractice(StrEnum):
    GROUP = "group"
    SHOW = "show"
    OFF = "off"


def _fail(message: str, code: int) -> typer.Exit:
    typer.echo(f"reko-fhir: {message}", err=True)
    return typer.Exit(code)


class _Progress:
    """``[#####.....]  42% 1200 resource(s)`` on stderr, redrawn in place, by bytes read;
    silent unless stderr is a terminal."""

    def __init__(self, total: int) -> None:
        self.total = max(total, 1)
        self.shown = sys.stderr.isatty()
        self._last = -1

    def step(self, done: int, count: int) -> None:
        if not self.shown:
            return
        percent = min(done * 100 // self.total, 100)
        if percent == self._last:
            return
        self._last = percent
        bar = "#" * (percent * 30 // 100)
        sys.stderr.write(f"\r[{bar:.<30}] {percent:3d}% {count} resource(s)")
        sys.stderr.flush()

    def close(self) -> None:
        if self.shown and self._last >= 0:
            sys.stderr.write("\n")


def validate_command(  # noqa: PLR0917 - typer maps parameters to options
    paths: Annotated[list[Path], typer.Argument(metavar="PATH...", help="Files or folders.")],
    profile: Annotated[
        str | None, typer.Option("--profile", help="Canonical URL or file of the profile.")
    ] = None,
    igs: Annotated[
        list[Path] | None, typer.Option("--ig", help="Folder of conformance resources.")
    ] = None,
    report: Annotated[ReportFormat, typer.Option("--report", help="Output format.")] = (
        ReportFormat.TEXT
    ),
    output: Annotated[Path | None, typer.Option("--output", help="Write the report here.")] = None,
    include: Annotated[
        list[str] | None,
        typer.Option("--include", help="In folders, read only files matching this glob."),
    ] = None,
    exclude: Annotated[
        list[str] | None,
        typer.Option("--exclude", help="In folders, skip files matching this glob."),
    ] = None,
    best_practice: Annotated[
        BestPractice,
        typer.Option(
            "--best-practice",
            help="Best-practice warnings (dom-6 …): one line each (group), every one, or off.",
        ),
    ] = BestPractice.GROUP,
) -> None:
    """Validate FHIR resources (JSON, XML, NDJSON, Bundles) against the reko or given profiles.

    Exit 0 when no resource has an error, 1 when any has, 2 on usage errors or unreadable input.
    """
    from reko_fhir.validation.definitions import DefinitionError, read_conformance_file  # noqa: PLC0415
    from reko_fhir.validation.inputs import InputError, files_in  # noqa: PLC0415
    from reko_fhir.validation.report_writers import WRITERS  # noqa: PLC0415 - light `map`
    from reko_fhir.validation.service import ValidationService, reko_definitions  # noqa: PLC0415

    for folder in igs or []:
        if not folder.is_dir():
            raise _fail(f"--ig {folder}: not a folder", EXIT_USAGE)
    try:
        definitions = reko_definitions(igs)
        if profile and Path(profile).is_file():
            loaded = [
                r
                for r in read_conformance_file(Path(profile))
                if r.get("resourceType") == "StructureDefinition"
            ]
            if not loaded:
                raise _fail(f"--profile {profile}: no StructureDefinition in it", EXIT_USAGE)
            definitions.add_all(loaded)
            profile = str(loaded[0]["url"])
        if profile and definitions.structure(profile) is None:
            raise _fail(
                f"--profile {profile}: not loaded (give the file, or --ig its folder)", EXIT_USAGE
            )
        files = list(files_in(paths, include, exclude))
    except (InputError, DefinitionError) as exc:
        raise _fail(str(exc), EXIT_USAGE) from None
    service = ValidationService(definitions)
    stream = output.open("w", encoding="utf-8") if output is not None else sys.stdout
    writer = WRITERS[report.value](stream, best_practice.value)
    try:
        unreadable = _validate_all(files, service, profile, writer)
        totals = writer.finish()
    finally:
        if output is not None:
            stream.close()
    if output is not None:
        typer.echo(f"{totals.line()} (report: {output})")
    if unreadable:
        raise typer.Exit(EXIT_USAGE)
    if writer.failed:
        raise typer.Exit(EXIT_PROBLEMS)


def _validate_all(
    files: list[tuple[Path, bool]], service: Any, profile: str | None, writer: Any
) -> bool:
    """Each resource of each file, validated and written as it comes (flat memory on any size);
    whether a file could not be read."""
    from reko_fhir.validation import reports  # noqa: PLC0415
    from reko_fhir.validation.inputs import InputError, NotFhirError, iter_inputs  # noqa: PLC0415

    progress = _Progress(sum(path.stat().st_size for path, _ in files))
    unreadable, done, count = False, 0, 0
    for path, in_folder in files:
        try:
            for item in iter_inputs(path):
                issues = service.validate(item.resource, profile, text=item.text)
                kind = str(item.resource.get("resourceType"))
                result = reports.Result(item.source, kind, item.resource.get("id"), issues)
                for part in reports.by_entry(result, _entries(item.resource)):
                    writer.add(part)
                done, count = done + item.size, count + 1
                progress.step(done, count)
        except InputError as exc:  # reported with the rest, so CI views show the broken file
            if isinstance(exc, NotFhirError) and in_folder:  # named, it is a mistake: fatal
                writer.add(reports.Result(str(path), "skipped", None, [], notes=[str(exc)]))
                continue
            fatal = Issue(IssueSeverity.FATAL, IssueCode.STRUCTURE, str(exc), None)
            writer.add(reports.Result(str(path), "unreadable", None, [fatal]))
            unreadable = True
    progress.close()
    return unreadable


def _entries(resource: dict[str, Any]) -> list[object]:
    """A Bundle's entry resources (one test case each in the reports); none for others."""
    if resource.get("resourceType") != "Bundle":
        return []
    entries = resource.get("entry")
    return [e.get("resource") if isinstance(e, dict) else None for e in entries or []]
