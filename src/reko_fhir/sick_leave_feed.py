"""The sick-leave feed: a care unit's active sick leaves from Intygstjänsten into its worklist.

``ListActiveSickLeavesForCareUnit`` is asked for the unit (retried, XSD-checked both ways by the
configured :class:`~reko_fhir.delivery.national.NationalServices`), and its certificates go to
:func:`~reko_fhir.worklist.import_sick_leaves`, which writes through the guard as the unit.
``ListSickLeavesForCare`` gives one patient's sick-leave cases at the unit (read, never stored).
Diagnoses are never read from either answer (``delivery/rivta``); logs carry counts only.

It joins an adapter (the national services) to the worklist, so it sits beside ``pull`` and
the CLI: the layers below import neither. :class:`FeedSchedule` runs the import every interval
inside ``serve`` or ``worker``.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import httpx
import structlog

from reko_fhir.config import Settings
from reko_fhir.delivery.errors import DeliveryError, is_retryable
from reko_fhir.delivery.national import (
    LIST_ACTIVE,
    LIST_FOR_CARE,
    NationalFile,
    NationalServices,
    NotConfiguredError,
    load_national,
)
from reko_fhir.delivery.rivta import SickLeaveCase
from reko_fhir.domain import HsaId, PatientId, mask_patient_ids
from reko_fhir.outcomes import Issue, OperationOutcomeError
from reko_fhir.store import FhirRepository
from reko_fhir.worklist import WorklistChanges, WorklistSettings, import_sick_leaves
from reko_fhir.worklist.unit import worklist_router

log = structlog.get_logger("reko_fhir.sick_leaves")

# Exit codes of ``reko-fhir sick-leaves`` (README "Sick-leave feed"), besides 0 and 2 (usage).
EXIT_REFUSED = 1
"""The national service answered with a fault, an error code or a message breaking the contract,
or the worklist refused a write: trying again will not help."""
EXIT_UNREACHABLE = 3
"""The service could not be reached or failed for as long as the retry policy allows."""


class FeedError(Exception):
    """One line saying what went wrong where (contract, element or faultcode), and the exit
    code it ends a command with. Patient numbers masked; never a diagnosis (none is read)."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(mask_patient_ids(" ".join(message.split())))
        self.exit_code = exit_code


@dataclass(frozen=True)
class FeedResult:
    """One import: certificates taken from the answer, the issues on what was left out of
    them (located, e.g. ``…intygsData[2].patient.personId.extension``: a record or a period
    that could not be taken), and the worklist's changes."""

    unit: HsaId
    certificates: int
    issues: tuple[Issue, ...]
    result_code: str
    comment: str | None
    changes: WorklistChanges

    def summary(self) -> dict[str, object]:
        changes = self.changes
        return {
            "unit": self.unit.value,
            "certificates": self.certificates,
            "problems": sum(1 for i in self.issues if i.is_error),
            "created": changes.created,
            "updated": changes.updated,
            "unchanged": changes.unchanged,
            "closed": sum(changes.closed.values()),
            "closed_by_status": dict(sorted(changes.closed.items())),
        }


# What a call may fail with: the producer's refusal, a transport or TLS failure (ssl.SSLError is
# an OSError), an answer that is no SOAP envelope.
CALL_FAILURES = (DeliveryError, httpx.TransportError, OSError, ValueError)


def _failure(contract: str, exc: BaseException) -> FeedError:
    if isinstance(exc, DeliveryError):
        code = EXIT_UNREACHABLE if exc.retryable else EXIT_REFUSED
        return FeedError(
            exc.reason if exc.reason.startswith(contract) else f"{contract}: {exc.reason}", code
        )
    said = str(exc) or type(exc).__name__
    if is_retryable(exc):
        return FeedError(f"{contract}: the service could not be reached: {said}", EXIT_UNREACHABLE)
    if isinstance(exc, httpx.TransportError | ssl.SSLError):
        # A certificate either side refuses: configuration, not luck (errors.is_retryable).
        return FeedError(f"{contract}: the TLS connection was refused: {said}", EXIT_REFUSED)
    return FeedError(f"{contract}: {type(exc).__name__}: {exc}", EXIT_REFUSED)


async def import_unit(
    repository: FhirRepository,
    services: NationalServices,
    unit: HsaId,
    *,
    today: date | None = None,
    settings: WorklistSettings | None = None,
) -> FeedResult:
    """Fetch the unit's active sick leaves and bring its worklist up to date.

    Raises :class:`FeedError` for a fault, an answer breaking the contract, a refused write
    or a service still failing when the retry policy gives up."""
    try:
        async with services.list_active(unit) as client:
            answer = await services.retried(LIST_ACTIVE, lambda: client.fetch(unit))
    except NotConfiguredError as exc:
        raise FeedError(str(exc), 2) from None
    except CALL_FAILURES as exc:
        raise _failure(LIST_ACTIVE, exc) from None
    try:
        changes = await import_sick_leaves(
            repository,
            unit,
            answer.records,
            today=today or date.today(),
            settings=settings,
            router=worklist_router(repository),
        )
    except OperationOutcomeError as exc:
        said = "; ".join(f"{i.expression or ''} {i.diagnostics}".strip() for i in exc.issues)
        raise FeedError(f"worklist of {unit}: {said}", EXIT_REFUSED) from None
    result = FeedResult(
        unit, len(answer.records), answer.issues, answer.result_code, answer.message, changes
    )
    log.info("sick_leaves.imported", **result.summary())
    return result


async def patient_history(
    services: NationalServices,
    unit: HsaId,
    patient: PatientId,
    *,
    max_days_between: int = 5,
) -> tuple[list[SickLeaveCase], tuple[Issue, ...]]:
    """The patient's sick-leave cases at ``unit`` (``ListSickLeavesForCare`` asks per unit;
    the patient's are picked from the answer), latest first."""
    try:
        async with services.list_for_care(unit) as client:
            answer = await services.retried(
                LIST_FOR_CARE,
                lambda: client.fetch(unit, max_days_between_certificates=max_days_between),
            )
    except NotConfiguredError as exc:
        raise FeedError(str(exc), 2) from None
    except CALL_FAILURES as exc:
        raise _failure(LIST_FOR_CARE, exc) from None
    cases = sorted(
        (case for case in answer.records if case.patient == patient),
        key=lambda case: case.start,
        reverse=True,
    )
    log.info("sick_leaves.history", unit=unit.value, cases=len(cases), issues=len(answer.issues))
    return cases, answer.issues


class FeedSchedule:
    """Imports the configured units every ``interval`` seconds, as an asyncio task.

    A failed round is logged (unit, contract, exit kind, reason masked: never a patient) and
    the unit is tried again next round; one unit's failure does not keep the others back."""

    def __init__(
        self,
        repository: FhirRepository,
        services: NationalServices,
        units: Sequence[HsaId],
        interval: float,
        settings: WorklistSettings,
    ) -> None:
        self.repository = repository
        self.services = services
        self.units = tuple(units)
        self.interval = interval
        self.settings = settings
        self.rounds = 0
        self._task: asyncio.Task[None] | None = None

    async def run_round(self) -> tuple[int, int]:
        """Import every unit once; (units imported, units failed)."""
        imported = failed = 0
        for unit in self.units:
            try:
                await import_unit(self.repository, self.services, unit, settings=self.settings)
                imported += 1
            except FeedError as exc:
                failed += 1
                log.warning(
                    "sick_leaves.scheduled_import_failed",
                    unit=unit.value,
                    exit_code=exc.exit_code,
                    reason=str(exc)[:300],
                )
            except Exception as exc:  # a round must not end the schedule
                failed += 1
                log.error(
                    "sick_leaves.scheduled_import_failed", unit=unit.value, error=type(exc).__name__
                )
        self.rounds += 1
        log.info("sick_leaves.round", round=self.rounds, imported=imported, failed=failed)
        return imported, failed

    async def _loop(self) -> None:
        while True:
            await self.run_round()
            await asyncio.sleep(self.interval)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name="sick-leave-feed")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None


def national_file(settings: Settings) -> NationalFile | None:
    """The national file of ``REKO_NATIONAL_FILE`` (None when unset; checked at start-up)."""
    return None if settings.national_file is None else load_national(settings.national_file)


def schedule_for(
    repository: FhirRepository, settings: Settings, process: str
) -> FeedSchedule | None:
    """The schedule of the national file when it runs in ``process`` (serve or worker)."""
    national = national_file(settings)
    if national is None or national.schedule is None or national.schedule.runs_in != process:
        return None
    return FeedSchedule(
        repository,
        NationalServices(national),
        [HsaId(u) for u in national.schedule.units],
        national.schedule.interval_seconds,
        WorklistSettings.from_settings(settings),
    )
