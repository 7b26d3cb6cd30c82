"""``reko-fhir worker``, ``reko-fhir pull`` and ``reko-fhir outbox list|show|retry|purge``.

They read the same settings as ``serve`` (``REKO_DATABASE_URL``, ``REKO_DATA_DIR``,
``REKO_TARGETS_FILE``) and print JSON, so scripts and people read the same thing.
"""

from __future__ import annotations

import asyncio
import json
import signal
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from reko_fhir.config import Settings
from reko_fhir.delivery import admin
from reko_fhir.delivery.config import TargetConfig, TargetConfigError, load_targets
from reko_fhir.delivery.national import load_national
from reko_fhir.domain.errors import DomainError
from reko_fhir.domain.identifiers import HsaId
from reko_fhir.logs import configure_logging
from reko_fhir.outcomes import OperationOutcomeError, outcome_json
from reko_fhir.store import Partitions, outbox
from reko_fhir.store.outbox import Subscription
from reko_fhir.store.sql import SqlRepository

T = TypeVar("T")
outbox_app = typer.Typer(help="Dead letters and the delivery queue.", no_args_is_help=True)


class Status(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    DEAD = "dead"


async def _with_store(
    work: Callable[[SqlRepository], Awaitable[T]], subscriptions: Sequence[Subscription] = ()
) -> T:
    """Run ``work`` on the store; a command that writes passes the targets' ``subscriptions``
    (at least the access log's: the AuditEvents it stores are owed to the national log)."""
    settings = Settings()
    if not settings.database_url:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    repository = await SqlRepository.open(settings.sqlalchemy_url(), subscriptions=subscriptions)
    try:
        return await work(repository)
    finally:
        await repository.close()


def _print(work: Callable[[SqlRepository], Awaitable[dict[str, Any]]]) -> None:
    try:
        answer = asyncio.run(_with_store(work))
    except OperationOutcomeError as failure:
        typer.echo(json.dumps(outcome_json(failure.issues), ensure_ascii=False, indent=2))
        raise typer.Exit(1) from None
    typer.echo(json.dumps(answer, ensure_ascii=False, indent=2))


@outbox_app.command("list")
def list_command(
    status: Annotated[Status | None, typer.Option(help="Only this status.")] = Status.DEAD,
    target: Annotated[str | None, typer.Option(help="Only this target.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many.")] = 100,
) -> None:
    """List messages (dead letters unless --status says otherwise)."""
    _print(
        lambda r: admin.list_messages(
            r, status=status.value if status else None, target=target, limit=limit
        )
    )


@outbox_app.command("show")
def show_command(message_id: int) -> None:
    """One message with its resource and every attempt and its reason."""
    _print(lambda r: admin.show_message(r, message_id))


@outbox_app.command("retry")
def retry_command(
    message_id: Annotated[int | None, typer.Argument(help="One dead letter.")] = None,
    target: Annotated[str | None, typer.Option(help="Every dead letter of a target.")] = None,
    all_dead: Annotated[bool, typer.Option("--all", help="Every dead letter.")] = False,
    edited: Annotated[
        Path | None, typer.Option("--resource", help="Replace the message's resource first.")
    ] = None,
) -> None:
    """Put dead letters back in the queue (one, a target's, or --all)."""
    if message_id is None and target is None and not all_dead:
        typer.echo("reko-fhir: name a message, --target or --all", err=True)
        raise typer.Exit(2)
    payload = json.loads(edited.read_text(encoding="utf-8")) if edited else None
    _print(lambda r: admin.replay(r, message_id=message_id, target=target, payload=payload))


@outbox_app.command("purge")
def purge_command(
    message_id: Annotated[int | None, typer.Argument(help="One finished message.")] = None,
    status: Annotated[Status, typer.Option(help="dead or delivered.")] = Status.DEAD,
    older_than_days: Annotated[float, typer.Option(help="Finished before this many days.")] = 0,
) -> None:
    """Remove finished messages for good."""
    _print(
        lambda r: admin.purge(
            r,
            status=status.value,
            older_than=timedelta(days=older_than_days),
            message_id=message_id,
        )
    )


def worker_command(
    once: Annotated[bool, typer.Option(help="Deliver what is due, then stop.")] = False,
    workers: Annotated[int, typer.Option(help="Concurrent workers in this process.")] = 1,
) -> None:
    """Deliver the outbox to the configured targets, apart from the API process (and import
    the sick-leave feed when the national file schedules it here)."""
    from reko_fhir.delivery.service import DeliveryService  # noqa: PLC0415
    from reko_fhir.delivery.targets import build_targets  # noqa: PLC0415

    configure_logging()
    settings = Settings()
    try:
        configs = load_targets(settings.targets_file, settings.targets)
    except TargetConfigError as exc:
        typer.echo(f"reko-fhir: {exc}", err=True)
        raise typer.Exit(2) from None
    national = load_national(settings.national_file) if settings.national_file else None
    schedule = national.schedule if national is not None else None
    scheduled = schedule is not None and schedule.runs_in == "worker"
    if not configs and not (scheduled and not once):
        typer.echo(
            "reko-fhir: no delivery targets configured (REKO_TARGETS_FILE), "
            "nor a sick-leave schedule (REKO_NATIONAL_FILE)",
            err=True,
        )
        raise typer.Exit(2)

    async def run(repository: SqlRepository) -> None:
        from reko_fhir.sick_leave_feed import schedule_for  # noqa: PLC0415

        targets = build_targets(configs)
        service = DeliveryService(
            repository,
            targets,
            workers=workers,
            batch=settings.worker_batch,
            lease=timedelta(seconds=settings.worker_lease_seconds),
            delivered_retention=timedelta(days=settings.delivered_retention_days),
            dead_retention=timedelta(days=settings.dead_retention_days),
        )
        if once:
            try:
                await service.workers[0].drain(timeout=3600)
            finally:
                await service.stop()
            return
        stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stopping.set)
        feed = schedule_for(repository, settings, "worker")
        service.start()
        if feed is not None:
            feed.start()
        await stopping.wait()
        if feed is not None:
            await feed.stop()
        await service.stop()

    asyncio.run(_with_store(run, [c.subscription() for c in configs]))


def pull_command(
    target: Annotated[str, typer.Option(help="The configured EHR target to pull from.")],
    unit: Annotated[
        str,
        typer.Option(help="The HSA-id of the care unit whose partition the pulled data joins."),
    ],
    since: Annotated[
        str | None, typer.Option(help="Only resources changed after this instant (ISO 8601).")
    ] = None,
    patient: Annotated[str | None, typer.Option(help="Only this patient (a reference).")] = None,
    resource_type: Annotated[
        list[str] | None, typer.Option("--type", help="Resource types (CarePlan, Procedure).")
    ] = None,
) -> None:
    """Pull CarePlans and activities from an EHR into a care unit's data, validated like any
    write."""
    from reko_fhir.delivery.targets import FhirDelivery, build_target  # noqa: PLC0415
    from reko_fhir.pull import PULLED_TYPES, pull_into_store  # noqa: PLC0415
    from reko_fhir.rest.router import FhirRouter  # noqa: PLC0415
    from reko_fhir.validation.service import ValidationService, reko_definitions  # noqa: PLC0415

    settings = Settings()
    configs = {c.name: c for c in load_targets(settings.targets_file, settings.targets)}
    if target not in configs or not isinstance(configs[target], TargetConfig):
        typer.echo(f"reko-fhir: no FHIR target named {target} is configured", err=True)
        raise typer.Exit(2)
    try:
        moment = datetime.fromisoformat(since) if since else None
    except ValueError:
        typer.echo(f"reko-fhir: --since is an ISO 8601 instant, not '{since}'", err=True)
        raise typer.Exit(2) from None
    if moment is not None and moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        HsaId(unit)
    except DomainError:
        typer.echo(f"reko-fhir: --unit is a care unit's HSA-id, not '{unit[:40]}'", err=True)
        raise typer.Exit(2) from None

    async def run(repository: SqlRepository) -> dict[str, Any]:
        source = build_target(configs[target])
        assert isinstance(source, FhirDelivery)
        router = FhirRouter(repository, ValidationService(reko_definitions()))
        async with repository.transaction(writer=False) as conn:
            names = await outbox.local_names(conn, target)
        try:
            results = await pull_into_store(
                router,
                source.fhir,
                since=moment,
                patient=patient,
                resource_types=resource_type or PULLED_TYPES,
                names=names,
                repository=repository.scoped(Partitions.of_unit(unit)),
            )
        finally:
            await source.aclose()
        return {
            "stored": sum(r.stored for r in results),
            "refused": [
                {"resource": r.resource, "status": r.status, "outcome": r.outcome}
                for r in results
                if not r.stored
            ],
        }

    # Only the access log's subscriptions: what is pulled is not sent back to the targets.
    logs = [c.subscription() for c in configs.values() if c.subscription().access_log]
    answer = asyncio.run(_with_store(run, logs))
    typer.echo(json.dumps(answer, ensure_ascii=False, indent=2))
    if answer["refused"]:
        raise typer.Exit(1)
