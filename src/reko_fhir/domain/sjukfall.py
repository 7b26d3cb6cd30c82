"""Sick leaves (*sjukfall*) as Rehabstöd chains them from sick-leave certificates. No I/O.

A sjukfall is one patient's certificates at one care unit, chained when at most
``max_days_between`` days lie between one certificate's end and the next one's start
(Rehabstöd's ``maxAntalDagarMellanIntyg``: default 5, 0–90). It starts at its first
certificate's start and ends at the latest end of its certificates. A certificate gives
periods and degrees, never a diagnosis: nothing here reads or keeps one.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Protocol

from reko_fhir.domain.errors import DomainError
from reko_fhir.domain.identifiers import HsaId, PatientId
from reko_fhir.domain.models import SickLeavePeriod

DEFAULT_MAX_DAYS_BETWEEN = 5
MAX_DAYS_BETWEEN_LIMIT = 90  # Rehabstöd's own bound of the setting


class Certificate(Protocol):
    """What a sick-leave certificate gives the worklist (``ActiveSickLeave`` of the RIVTA
    client is one): its id, patient, issuing care unit and work-capacity periods."""

    @property
    def certificate_id(self) -> str: ...
    @property
    def patient(self) -> PatientId: ...
    @property
    def care_unit(self) -> HsaId: ...
    @property
    def periods(self) -> tuple[SickLeavePeriod, ...]: ...


@dataclass(frozen=True, slots=True)
class Sjukfall:
    """One sick leave of a patient at a care unit.

    ``degree`` is the degree (%) on ``today`` given to :func:`chain_sjukfall`: the highest of the
    periods covering that day, else the latest period begun by then, else the first period.
    ``length_days`` counts the days on sick leave (overlaps once, the gaps between chained
    certificates not at all), as Rehabstöd's ``dagar``.
    """

    patient: PatientId
    care_unit: HsaId
    start: date
    end: date
    degree: int
    length_days: int
    certificate_ids: tuple[str, ...]

    def ended(self, today: date) -> bool:
        """The last certificate's last day is behind ``today``."""
        return self.end < today

    def in_focus(self, today: date, focus_days: int) -> bool:
        """``today`` is among the first ``focus_days`` days of the sick leave (day 1 = start)."""
        return (today - self.start).days < focus_days


def _span(periods: tuple[SickLeavePeriod, ...], today: date) -> tuple[date, date]:
    # A period still open (no end) runs at least until today.
    ends = [p.end if p.end is not None else max(today, p.start) for p in periods]
    return min(p.start for p in periods), max(ends)


def _days(periods: list[SickLeavePeriod], today: date) -> int:
    """Days covered by any period, each counted once."""
    covered = 0
    reached: date | None = None  # the last day already counted
    for period in sorted(periods, key=lambda p: p.start):
        end = period.end if period.end is not None else max(today, period.start)
        first = period.start if reached is None else max(period.start, reached + timedelta(1))
        if end >= first:
            covered += (end - first).days + 1
            reached = end
    return covered


def _degree(periods: list[SickLeavePeriod], today: date) -> int:
    covering = [p.degree for p in periods if p.start <= today and (p.end is None or today <= p.end)]
    if covering:
        return max(covering)
    begun = [p for p in periods if p.start <= today]
    if begun:
        latest = max(begun, key=lambda p: (p.start, p.end or today))
        return latest.degree
    return min(periods, key=lambda p: p.start).degree


def chain_sjukfall(
    certificates: Iterable[Certificate],
    *,
    max_days_between: int = DEFAULT_MAX_DAYS_BETWEEN,
    today: date | None = None,
) -> list[Sjukfall]:
    """The sick leaves of ``certificates``, per patient and care unit, ordered by unit, start
    and patient. Two certificates chain when the days strictly between one's end and the
    next one's start are at most ``max_days_between`` (overlapping ones always do).

    A certificate without a period gives no sick leave. The same certificate id twice counts
    once (a feed may repeat one). ``today`` (default: the local date) picks the current degree."""
    today = today or date.today()
    if not 0 <= max_days_between <= MAX_DAYS_BETWEEN_LIMIT:
        raise DomainError(
            "max_days_between",
            f"days between certificates is 0-{MAX_DAYS_BETWEEN_LIMIT}, not {max_days_between}",
        )
    groups: dict[tuple[HsaId, PatientId], dict[str, Certificate]] = defaultdict(dict)
    for certificate in certificates:
        if certificate.periods:
            key = (certificate.care_unit, certificate.patient)
            groups[key].setdefault(certificate.certificate_id, certificate)
    found: list[Sjukfall] = []
    for (unit, patient), by_id in groups.items():
        spans = sorted(
            ((*_span(c.periods, today), c) for c in by_id.values()),
            key=lambda item: (item[0], item[1], item[2].certificate_id),
        )
        chain: list[Certificate] = []
        chain_end = date.min
        for start, end, certificate in spans:
            if chain and (start - chain_end).days - 1 > max_days_between:
                found.append(_sjukfall(patient, unit, chain, today))
                chain = []
            chain_end = end if not chain else max(chain_end, end)
            chain.append(certificate)
        found.append(_sjukfall(patient, unit, chain, today))
    return sorted(found, key=lambda s: (s.care_unit.value, s.start, s.patient.value))


def _sjukfall(patient: PatientId, unit: HsaId, chain: list[Certificate], today: date) -> Sjukfall:
    periods = [p for c in chain for p in c.periods]
    start, end = _span(tuple(periods), today)
    return Sjukfall(
        patient=patient,
        care_unit=unit,
        start=start,
        end=end,
        degree=_degree(periods, today),
        length_days=_days(periods, today),
        certificate_ids=tuple(c.certificate_id for c in chain),
    )
