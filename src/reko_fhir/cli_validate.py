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
    """``[#####.....] 120/500`` on stderr, redrawn in place; silent unless stderr is a terminal."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.shown = sys.stderr.isatty() and total > 1
        self._last = -1

    def step(self, done: int) -> None:
        if not self.shown:
            return
        filled = done * 30 // self.total
        if filled == self._last and done != self.total:
            return
        self._last = filled
        sys.stderr.write(f"\r[{'#' * filled}{'.' * (30 - filled)}] {done}/{self.total}")
        sys.stderr.flush()

    def close(self) -> None:
        if self.shown:
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
    from reko_fhir.validation import reports  # noqa: PLC0415 - keeps `map` start-up light
    from reko_fhir.validation.definitions import DefinitionError, read_conformance_file  # noqa: PLC0415
    from reko_fhir.validation.inputs import InputError, files_in  # noqa: PLC0415
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
    results, inputs, unreadable = _read(files)
    service = ValidationService(definitions)
    progress = _Progress(len(inputs))
    for number, item in enumerate(inputs, 1):
        issues = service.validate(item.resource, profile)
        kind = str(item.resource.get("resourceType"))
        result = reports.Result(item.source, kind, item.resource.get("id"), issues)
        results += reports.by_entry(result, _entries(item.resource))
        progress.step(number)
    progress.close()
    rendered = reports.RENDERERS[report.value](results, best_practice.value)
    if output is not None:
        output.write_text(rendered, encoding="utf-8")
        typer.echo(f"{reports.Totals.of(results).line()} (report: {output})")
    else:
        sys.stdout.write(rendered)
    if unreadable:
        raise typer.Exit(EXIT_USAGE)
    if any(r.errors for r in results):
        raise typer.Exit(EXIT_PROBLEMS)


def _read(files: list[tuple[Path, bool]]) -> tuple[list[Any], list[Any], bool]:
    """Results for the files not validated (skipped, unreadable), the inputs, any unreadable."""
    from reko_fhir.validation import reports  # noqa: PLC0415
    from reko_fhir.validation.inputs import InputError, NotFhirError, read_inputs  # noqa: PLC0415

    results: list[reports.Result] = []
    inputs = []
    unreadable = False
    for path, in_folder in files:
        try:
            inputs += read_inputs(path)
        except InputError as exc:  # reported with the rest, so CI views show the broken file
            if isinstance(exc, NotFhirError) and in_folder:  # named, it is a mistake: fatal
                results.append(reports.Result(str(path), "skipped", None, [], notes=[str(exc)]))
                continue
            fatal = Issue(IssueSeverity.FATAL, IssueCode.STRUCTURE, str(exc), None)
            results.append(reports.Result(str(path), "unreadable", None, [fatal]))
            unreadable = True
    return results, inputs, unreadable


def _entries(resource: dict[str, Any]) -> list[object]:
    """A Bundle's entry resources (one test case each in the reports); none for others."""
    if resource.get("resourceType") != "Bundle":
        return []
    entries = resource.get("entry")
    return [e.get("resource") if isinstance(e, dict) else None for e in entries or []]
