"""The ``reko-fhir`` command line: ``map`` (journal export → transaction Bundle).

Exit codes follow one rule for every command: 0 done (warnings may be printed), 1 the input has
problems (each printed, nothing written), 2 the command was used wrongly.
"""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from reko_fhir import __version__
from reko_fhir.formats import dump_json, dump_xml
from reko_fhir.mapping import case_to_bundle
from reko_fhir.mapping.journal import (
    MappingSpecError,
    load_mapping,
    map_file,
    resolve_mapping_path,
)

EXIT_PROBLEMS = 1
EXIT_USAGE = 2

app = typer.Typer(
    name="reko-fhir",
    help="Koordineringsinsatser for sick-listed patients as HL7 FHIR R4.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


class OutputFormat(StrEnum):
    JSON = "json"
    XML = "xml"


def _fail(message: str, code: int) -> typer.Exit:
    typer.echo(f"reko-fhir: {message}", err=True)
    return typer.Exit(code)


@app.callback(invoke_without_command=True)
def _root(
    version: Annotated[bool, typer.Option("--version", help="Print the version.")] = False,
) -> None:
    if version:
        typer.echo(__version__)
        raise typer.Exit(0)


@app.command("map")
def map_command(
    input_file: Annotated[Path, typer.Argument(metavar="INPUT", help="The journal export.")],
    mapping: Annotated[
        str, typer.Option("--mapping", "-m", help="Mapping file, or a name in mappings/.")
    ],
    output_format: Annotated[
        OutputFormat, typer.Option("--format", "-f", help="FHIR JSON or XML.")
    ] = OutputFormat.JSON,
    out_dir: Annotated[
        Path | None,
        typer.Option("--out-dir", help="Write one file per case here (needed for several)."),
    ] = None,
) -> None:
    """Map a journal export to one FHIR transaction Bundle per coordination case."""
    try:
        spec = load_mapping(resolve_mapping_path(mapping))
    except MappingSpecError as exc:
        raise _fail(str(exc), EXIT_USAGE) from None
    if not input_file.is_file():
        raise _fail(f"no input file {input_file}", EXIT_USAGE)
    result = map_file(spec, input_file)
    for issue in result.issues:
        typer.echo(str(issue), err=True)
    if result.errors:
        raise _fail(
            f"{len(result.errors)} problem(s) in {input_file.name}; nothing written", EXIT_PROBLEMS
        )
    dump = dump_json if output_format is OutputFormat.JSON else dump_xml
    # Render everything before writing anything: a failure leaves no partial output behind.
    documents = [(case.source.record_id, dump(case_to_bundle(case))) for case in result.cases]
    if out_dir is None:
        if len(documents) != 1:
            raise _fail(
                f"{input_file.name} holds {len(documents)} cases; use --out-dir", EXIT_USAGE
            )
        sys.stdout.buffer.write(documents[0][1])
        sys.stdout.buffer.flush()
        return
    out_dir.mkdir(parents=True, exist_ok=True)
    for record_id, document in documents:
        (out_dir / f"{record_id}.{output_format.value}").write_bytes(document)


def main() -> None:
    """Console-script entry point."""
    app()
