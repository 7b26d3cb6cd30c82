"""A generated, seeded sick-leave feed over three care units, with the worklist it must give.

Each planned sick leave carries its *intent* label, and the known answer is computed from
those labels and the generator's own dates alone (never by the code under test):

- ``in-window``: started 0-80 days ago, still going: a Task to assess (``requested``);
- ``two-units``: the same patient in window at two units: a Task at each;
- ``out-of-window``: started 100-300 days ago, still going: no Task;
- ``ended``: in window but its last certificate ended 1-14 days ago: no Task;
- ``in-case``: in window, but the patient has a coordination case (an active
  RekoEpisodeOfCare) at the unit, written through the API before the import: no open Task;
- ``excluded``: in window; a coordinator rejects its Task with a ``reko-exclusion`` reason
  after the first import: never ``requested`` again.

A sick leave is 1-3 certificates of 1-2 periods each, at most 5 days apart (so they chain
into one, Rehabstöd's default ``maxAntalDagarMellanIntyg``), and today always lies inside a
period of a going sick leave, so its degree is that period's. Every certificate carries
diagnoses (:data:`~tests.peers.rivta_stub.DIAGNOSES`): they must go nowhere.
"""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta

from tests.peers.rivta_stub import _certificate

UNITS = ("SE2321000016-F0A1", "SE2321000016-F0B2", "SE2321000016-F0C3")
# Sick leaves per unit and label (two-units: patients shared with the next unit, each counted
# at both): 3 x (70 + 25 + 25 + 20 + 15) + 2 x 3 x 20 = 585 sick leaves.
PER_UNIT = {"in-window": 70, "out-of-window": 25, "ended": 25, "in-case": 20, "excluded": 15}
SHARED_PER_PAIR = 20
CANDIDATES = frozenset({"in-window", "two-units"})


@dataclass
class PlannedSickLeave:
    unit: str
    patient: str
    label: str
    periods: list[tuple[date, date, int]] = field(default_factory=list)
    certificates: list[tuple[str, list[tuple[date, date, int]]]] = field(default_factory=list)

    @property
    def start(self) -> date:
        return self.periods[0][0]

    @property
    def days(self) -> int:
        """Days on sick leave: the periods never overlap, gaps between them do not count."""
        return sum((end - start).days + 1 for start, end, _ in self.periods)

    def degree_on(self, today: date) -> int:
        (degree,) = [d for s, e, d in self.periods if s <= today <= e]
        return degree


def luhn(digits: str) -> int:
    total = 0
    for index, char in enumerate(digits):
        product = int(char) * (2 if index % 2 == 0 else 1)
        total += product - 9 if product > 9 else product
    return (10 - total % 10) % 10


class Generator:
    def __init__(self, seed: int, today: date) -> None:
        self.random = random.Random(seed)
        self.today = today
        self.used: set[str] = set()
        self.certificate_count = 0

    def personnummer(self) -> str:
        while True:
            born = date(1950, 1, 1) + timedelta(days=self.random.randrange(365 * 50))
            serial = f"{self.random.randrange(1000):03d}"
            ten = born.strftime("%y%m%d") + serial
            value = born.strftime("%Y%m%d") + serial + str(luhn(ten))
            if value not in self.used:
                self.used.add(value)
                return value

    def sick_leave(self, unit: str, patient: str, label: str) -> PlannedSickLeave:
        today, rnd = self.today, self.random
        if label == "out-of-window":
            start = today - timedelta(days=rnd.randint(100, 300))
        elif label == "ended":
            start = today - timedelta(days=rnd.randint(30, 80))
        else:
            start = today - timedelta(days=rnd.randint(0, 80))
        ended_by = today - timedelta(days=rnd.randint(1, 14)) if label == "ended" else None
        planned = PlannedSickLeave(unit, patient, label)
        cursor = start
        certificates = rnd.randint(1, 3)
        for number in range(certificates):
            periods: list[tuple[date, date, int]] = []
            for _ in range(rnd.randint(1, 2)):
                length = rnd.randint(7, 40)
                end = cursor + timedelta(days=length - 1)
                periods.append((cursor, end, rnd.choice((25, 50, 75, 100))))
                cursor = end + timedelta(days=1)
            planned.periods += periods
            planned.certificates.append((self._certificate_id(), periods))
            if number < certificates - 1:
                gap = rnd.randint(0, 5)  # chains: at most 5 days between
                if cursor <= today < cursor + timedelta(days=gap):
                    gap = 0  # today lies inside a period of a going sick leave
                cursor += timedelta(days=gap)
        _, last_end, degree = planned.periods[-1]
        if ended_by is not None:
            self._end_at(planned, ended_by)
        elif last_end < today + timedelta(days=1):
            # Still going: one more period from the end (or today) past today, no gap into today.
            begin = last_end + timedelta(days=1)
            planned.periods.append((begin, today + timedelta(days=rnd.randint(1, 60)), degree))
            planned.certificates.append((self._certificate_id(), [planned.periods[-1]]))
        return planned

    def _end_at(self, planned: PlannedSickLeave, last_day: date) -> None:
        """Cut the sick leave so that its last period ends on ``last_day``."""
        kept = [(s, min(e, last_day), d) for s, e, d in planned.periods if s <= last_day]
        planned.periods = kept
        planned.certificates = [
            (cid, cut)
            for cid, periods in planned.certificates
            if (cut := [(s, min(e, last_day), d) for s, e, d in periods if s <= last_day])
        ]

    def _certificate_id(self) -> str:
        self.certificate_count += 1
        return f"intyg-{self.certificate_count:05d}"


def generate(seed: int, today: date) -> list[PlannedSickLeave]:
    """The feed: every unit's planned sick leaves, shuffled per unit."""
    generator = Generator(seed, today)
    plan: list[PlannedSickLeave] = []
    for unit in UNITS:
        for label, count in PER_UNIT.items():
            for _ in range(count):
                plan.append(generator.sick_leave(unit, generator.personnummer(), label))
    for index, unit in enumerate(UNITS):
        other = UNITS[(index + 1) % len(UNITS)]
        for _ in range(SHARED_PER_PAIR):
            patient = generator.personnummer()
            plan.append(generator.sick_leave(unit, patient, "two-units"))
            plan.append(generator.sick_leave(other, patient, "two-units"))
    generator.random.shuffle(plan)
    return plan


def feed_xml(plan: list[PlannedSickLeave]) -> dict[str, str]:
    """Each unit's ``intygsData`` elements, as the stub serves them (diagnoses included)."""
    listings: dict[str, list[str]] = defaultdict(list)
    for planned in plan:
        for cid, periods in planned.certificates:
            iso = [(s.isoformat(), e.isoformat(), d) for s, e, d in periods]
            listings[planned.unit].append(_certificate(cid, planned.patient, iso, planned.unit))
    return {unit: "".join(parts) for unit, parts in listings.items()}


def known_worklist(
    plan: list[PlannedSickLeave], today: date
) -> dict[str, set[tuple[str, str, int, int]]]:
    """Per unit, the Tasks to assess: (personnummer, start, days, degree today)."""
    answer: dict[str, set[tuple[str, str, int, int]]] = {unit: set() for unit in UNITS}
    for planned in plan:
        if planned.label in CANDIDATES:
            answer[planned.unit].add(
                (planned.patient, planned.start.isoformat(), planned.days, planned.degree_on(today))
            )
    return answer


def labelled(plan: list[PlannedSickLeave], label: str, unit: str) -> list[PlannedSickLeave]:
    return [p for p in plan if p.label == label and p.unit == unit]
