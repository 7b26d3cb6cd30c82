"""Importing a care unit's sick-leave certificates into its worklist of Tasks."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date

from reko_fhir.domain.identifiers import HsaId
from reko_fhir.domain.sjukfall import (
    DEFAULT_MAX_DAYS_BETWEEN,
    MAX_DAYS_BETWEEN_LIMIT,
    Certificate,
)
from reko_fhir.store import FhirRepository

DEFAULT_FOCUS_DAYS = 90


@dataclass(frozen=True)
class WorklistSettings:
    """``max_days_between``: days allowed between chained certificates (0–90, Rehabstöd's
    ``maxAntalDagarMellanIntyg``); ``focus_days``: how long from its start a sick leave is a
    candidate."""

    max_days_between: int = DEFAULT_MAX_DAYS_BETWEEN
    focus_days: int = DEFAULT_FOCUS_DAYS

    def __post_init__(self) -> None:
        if not 0 <= self.max_days_between <= MAX_DAYS_BETWEEN_LIMIT:
            raise ValueError(f"max_days_between is 0-{MAX_DAYS_BETWEEN_LIMIT}")
        if self.focus_days < 1:
            raise ValueError("focus_days is at least 1")


@dataclass(frozen=True)
class WorklistChanges:
    """What one import did: Tasks created, updated, unchanged and closed (by the status they
    closed with), and the ids of the unit's Tasks the import wrote or found."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0
    closed: dict[str, int] = field(default_factory=dict)
    task_ids: tuple[str, ...] = ()


async def import_sick_leaves(
    repository: FhirRepository,
    unit: HsaId,
    certificates: Sequence[Certificate],
    *,
    today: date,
    settings: WorklistSettings | None = None,
) -> WorklistChanges:
    """Chain ``certificates`` into sick leaves and bring the unit's worklist up to date."""
    raise NotImplementedError("the worklist import is being built")
