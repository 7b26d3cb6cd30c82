"""The ``reko-fhir`` command line: ``map`` (journal export → transaction Bundle), ``validate``.

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
from reko_fhir.cli_delivery import outbox_app, pull_command, worker_command
from reko_fhir.cli_followups import follow_ups_command
from reko_fhir.cli_sick_leaves import sick_leaves_app
from reko_fhir.cli_stats import stats_command
from reko_fhir.cli_validate import validate_command
from reko_fhir.cli_worklist import worklist_command
from reko_fhir.formats import dump_json, dump_xml
from reko_fhir.mapping import case_to_bundle
from reko_fhir.mapping.journal import (
    MappingSpecError,
    load_mapping,
    map_file,
    resolve_mapping_path,
    shipped_mappings,
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
    ctx: typer.Context,
    version: Annotated[bool, typer.Option("--version", help="Print the version.")] = False,
) -> None:
    if version:
        typer.echo(__version__)
        raise typer.Exit(0)
    if ctx.invoked_subcommand is None or "--help" in sys.argv[1:]:
        return
    # Every command fails the same way on a bad configuration: one line, exit 2, before it starts.
    from reko_fhir.cli_preflight import ConfigurationError, check_configuration  # noqa: PLC0415

    try:
        check_configuration()
    except ConfigurationError as exc:
        raise _fail(str(exc), EXIT_USAGE) from None


@app.command("map")
def map_command(
    input_file: Annotated[
        Path | None, typer.Argument(metavar="INPUT", help="The journal export.")
    ] = None,
    mapping: Annotated[
        str | None,
        typer.Option("--mapping", "-m", help="Mapping file, or the name of a shipped mapping."),
    ] = None,
    output_format: Annotated[
        OutputFormat, typer.Option("--format", "-f", help="FHIR JSON or XML.")
    ] = OutputFormat.JSON,
    out_dir: Annotated[
        Path | None,
        typer.Option("--out-dir", help="Write one file per case here (needed for several)."),
    ] = None,
    list_mappings: Annotated[
        bool, typer.Option("--list", help="List the shipped mappings and stop.")
    ] = False,
) -> None:
    """Map a journal export to one FHIR transaction Bundle per coordination case."""
    if list_mappings:
        _print_mappings()
        return
    if mapping is None or input_file is None:
        raise _fail("give --mapping NAME and INPUT (--list shows the mappings)", EXIT_USAGE)
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


def _print_mappings() -> None:
    """One line per shipped mapping: its name, reader and description."""
    for path in shipped_mappings():
        try:
            spec = load_mapping(path)
        except MappingSpecError as exc:  # a broken shipped file is named, not hidden
            typer.echo(f"{path.stem}\t(unreadable: {exc})")
            continue
        typer.echo(f"{path.stem}\t{spec.reader}\t{_description(path)}")


def _description(path: Path) -> str:
    import yaml  # noqa: PLC0415

    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    return str(raw.get("description", "")) if isinstance(raw, dict) else ""


@app.command("serve")
def serve_command(
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8080,
) -> None:
    """Run the FHIR service (embedded SQLite in REKO_DATA_DIR, or REKO_DATABASE_URL)."""
    import uvicorn  # noqa: PLC0415 - only serve needs the server

    from reko_fhir.api import create_app  # noqa: PLC0415
    from reko_fhir.config import Settings  # noqa: PLC0415
    from reko_fhir.logs import configure_logging  # noqa: PLC0415

    settings = Settings()
    if not settings.external_keys and not _loopback(host):
        # The local key is for one machine: off loopback, tokens must come from a real issuer.
        typer.echo(
            f"refusing to listen on {host}: off loopback, set REKO_JWKS_FILE or REKO_JWKS_URL "
            "(the local signing key is only trusted on 127.0.0.1/::1)",
            err=True,
        )
        raise typer.Exit(2)
    configure_logging()
    # uvicorn's own access log would print query strings unmasked (personnummer in searches).
    # h11 with room for a 1 MB request head: a long URL then reaches the app, which answers
    # 414 with an OperationOutcome (httptools refuses past ~80 KB with a plain-text 400).
    uvicorn.run(
        create_app(settings),
        host=host,
        port=port,
        log_level="info",
        access_log=False,
        http="h11",
        h11_max_incomplete_event_size=1024 * 1024,
    )


def _loopback(host: str) -> bool:
    import ipaddress  # noqa: PLC0415

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@app.command("token")
def token_command(  # noqa: PLR0917 - typer maps parameters to options
    scope: Annotated[
        str, typer.Option(help="SMART scopes, e.g. 'user/CarePlan.cruds system/Procedure.rs'.")
    ],
    unit: Annotated[
        str | None, typer.Option(help="HSA-id of the care unit the token acts for.")
    ] = None,
    subject: Annotated[
        str | None, typer.Option(help="HSA-id of the user or system (default: the unit).")
    ] = None,
    external_actor: Annotated[
        str | None,
        typer.Option(help="Identifier system|value of an external actor (Försäkringskassan)."),
    ] = None,
    all_units: Annotated[
        bool, typer.Option(help="A platform token for every unit (system/ scopes only).")
    ] = False,
    minutes: Annotated[int, typer.Option(help="Lifetime in minutes.")] = 60,
) -> None:
    """Print a token signed with the local key of REKO_DATA_DIR (alone on the last line)."""
    from reko_fhir.config import Settings  # noqa: PLC0415
    from reko_fhir.security import tokens  # noqa: PLC0415

    settings = Settings()
    claims = {
        "sub": subject or unit or "reko-fhir-cli",
        "scope": scope,
        **({"care_unit": unit} if unit else {}),
        **({"external_actor": external_actor} if external_actor else {}),
        **({"reko_all_units": True} if all_units else {}),
    }
    try:
        tokens.principal_from_claims(claims)  # the same checks the service makes, before signing
    except tokens.AuthError as failure:
        typer.echo(f"error: {failure.message}", err=True)
        raise typer.Exit(2) from None
    key = tokens.LocalSigningKey.load_or_create(settings.data_dir)
    typer.echo(
        f"# signed with {settings.data_dir / 'signing-key.pem'}, valid {minutes} min", err=True
    )
    typer.echo(
        key.mint(
            scope,
            subject=str(claims["sub"]),
            care_unit=unit,
            external_actor=external_actor,
            all_units=all_units,
            lifetime=minutes * 60,
            audience=settings.token_audience,
        )
    )


@app.command("reindex")
def reindex_command(
    resource_type: Annotated[
        list[str] | None,
        typer.Option("--type", help="Only this resource type (repeatable); default: every type."),
    ] = None,
) -> None:
    """Rebuild the search index from the stored resources, after an upgrade that indexes more
    (a search on a parameter the old version did not index misses the old resources)."""
    import asyncio  # noqa: PLC0415
    import json  # noqa: PLC0415

    from reko_fhir.cli_delivery import _with_store  # noqa: PLC0415
    from reko_fhir.store.reindex import reindex  # noqa: PLC0415

    done = asyncio.run(_with_store(lambda repository: reindex(repository, resource_type or ())))
    typer.echo(json.dumps({"reindexed": dict(sorted(done.items())), "total": done.total()}))


app.command("validate")(validate_command)
app.add_typer(outbox_app, name="outbox")
app.command("worker")(worker_command)
app.command("pull")(pull_command)
app.command("worklist")(worklist_command)
app.add_typer(sick_leaves_app, name="sick-leaves")
app.command("stats")(stats_command)
app.command("follow-ups")(follow_ups_command)


def main() -> None:
    """Console-script entry point."""
    app()
