"""A seeded year of coordination activity at several care units, and the KVÅ statistics of it
counted the independent way: with searches (https://hl7.org/fhir/R4/search.html), as a
person checking the report would, never with the code under test.

The year has what the statistics must tell apart: other statuses and KVÅ codes, deleted
Procedures, occasions just across a month's edge in Swedish time, Periods over two months,
episodes with and without a sick leave, first occasions before and after day 90, notices of
another category.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any, Protocol

from reko_fhir.mapping import codings as c
from reko_fhir.store import FhirRepository
from reko_fhir.store.repository import Bucket

Json = dict[str, Any]
PARTS = ("personligt-stod", "intern-samordning", "extern-samverkan")
PNR = "http://electronichealth.se/identifier/personnummer"
Key = tuple[str, str, str, str | None]


def _kva(code: str) -> Json:
    return {"coding": [{"system": c.KVA, "code": code}]}


def _moment(rng: random.Random, year: int) -> str:
    day = date(year, 1, 1) + timedelta(days=rng.randrange(365))
    if rng.random() < 0.1:  # just past midnight on the 1st, Swedish time: the month before in UTC
        return f"{day:%Y-%m}-01T00:{rng.randrange(10, 59)}:00+01:00"
    return f"{day.isoformat()}T{rng.randrange(7, 18):02d}:{rng.choice(['00', '30'])}:00+02:00"


async def fill_year(
    unit_store: Callable[[str], FhirRepository], units: list[str], *, seed: int, year: int = 2026
) -> None:
    """Write the year into each unit's partition (``unit_store(unit)`` writes there)."""
    rng = random.Random(seed)
    for number, unit in enumerate(units):
        store = unit_store(unit)
        await store.create(
            {
                "resourceType": "Organization",
                "identifier": [{"system": c.HSA, "value": unit}],
                "name": f"Vårdenhet {unit}",
            }
        )
        for person in range(18):
            pnr = f"19{70 + number}0{person % 9 + 1}{10 + person:02d}0000"
            patient = await store.create(
                {"resourceType": "Patient", "identifier": [{"system": PNR, "value": pnr}]}
            )
            ref = {"reference": f"Patient/{patient.id}"}
            for _ in range(rng.choice([0, 1, 1, 2])):
                await store.create(_episode(rng, year, ref))
            for _ in range(rng.randrange(12)):
                stored = await store.create(_procedure(rng, year, ref))
                if rng.random() < 0.05:
                    await store.delete("Procedure", stored.id)
            for _ in range(rng.randrange(3)):
                category = "rehabiliteringsbehov" if rng.random() < 0.8 else "annat"
                await store.create(
                    {
                        "resourceType": "Communication",
                        "status": "completed",
                        "category": [
                            {"coding": [{"system": c.CS_COMMUNICATION_CATEGORY, "code": category}]}
                        ],
                        "subject": ref,
                        "sent": _moment(rng, year),
                    }
                )


def _episode(rng: random.Random, year: int, patient: Json) -> Json:
    start = date(year, 1, 1) + timedelta(days=rng.randrange(-30, 365))
    episode: Json = {
        "resourceType": "EpisodeOfCare",
        "status": rng.choice(["active", "finished", "planned"]),
        "type": [_kva("GC001")],
        "patient": patient,
        "period": {"start": start.isoformat()},
    }
    if rng.random() < 0.8:
        sick = start - timedelta(days=rng.randrange(0, 120))
        periods = [sick, sick + timedelta(days=30)] if rng.random() < 0.4 else [sick]
        episode["extension"] = [
            {
                "url": c.EXT_SICK_LEAVE,
                "extension": [
                    {"url": "start", "valueDate": p.isoformat()},
                    {"url": "degree", "valuePositiveInt": 100},
                ],
            }
            for p in reversed(periods)
        ]
    return episode


def _procedure(rng: random.Random, year: int, patient: Json) -> Json:
    code = rng.choices(["GC001", "DV077", "AW026", "DV076"], [6, 2, 2, 1])[0]
    procedure: Json = {
        "resourceType": "Procedure",
        "status": rng.choices(["completed", "in-progress", "not-done"], [8, 1, 1])[0],
        "code": _kva(code),
        "subject": patient,
    }
    if rng.random() < 0.8:
        procedure["category"] = {"coding": [{"system": c.CS_PART, "code": rng.choice(PARTS)}]}
    if rng.random() < 0.05:  # a Period over a month's edge counts in both months, as searched
        day = date(year, rng.randrange(1, 12), 28)
        procedure["performedPeriod"] = {
            "start": day.isoformat(),
            "end": f"{day:%Y}-{day.month + 1:02d}-02",
        }
    else:
        procedure["performedDateTime"] = _moment(rng, year)
    return procedure


class Searcher(Protocol):
    """Searches as one care unit makes them: a total, and every match."""

    async def total(self, kind: str, params: list[tuple[str, str]]) -> int: ...

    async def matches(self, kind: str, params: list[tuple[str, str]]) -> list[Json]: ...


def _utc(text: str) -> datetime:
    if len(text) == 10:
        return datetime.fromisoformat(text).replace(tzinfo=UTC)
    return datetime.fromisoformat(text).astimezone(UTC)


def _day(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


async def searched_counts(
    searcher_of: Callable[[str], Searcher], units: list[str], buckets: list[Bucket]
) -> dict[Key, int]:
    """(unit, month, group, stratum) → count, from searches of each unit and month."""
    found: Counter[Key] = Counter()
    for unit in units:
        search = searcher_of(unit)
        for bucket in buckets:
            period = [("date", f"ge{_day(bucket.start)}"), ("date", f"lt{_day(bucket.end)}")]
            label = bucket.label
            for code in ("GC001", "DV077", "AW026"):
                asked = [("code", f"{c.KVA}|{code}"), ("status", "completed"), *period]
                found[(unit, label, code.lower(), None)] = await search.total("Procedure", asked)
            gc001 = [("code", f"{c.KVA}|GC001"), ("status", "completed"), *period]
            for part in PARTS:
                asked = [*gc001, ("category", f"{c.CS_PART}|{part}")]
                found[(unit, label, "gc001", part)] = await search.total("Procedure", asked)
            occasions = await search.matches("Procedure", gc001)
            found[(unit, label, "patienter", None)] = len(
                {p["subject"]["reference"] for p in occasions}
            )
            started = [
                e
                for e in await search.matches("EpisodeOfCare", period)
                if bucket.start <= _utc(e["period"]["start"]) < bucket.end
            ]
            found[(unit, label, "nya-insatser", None)] = len(started)
            found[(unit, label, "inom-90-dagar", None)] = sum(
                [await _in_time(search, e) for e in started]
            )
            notices = [
                ("category", f"{c.CS_COMMUNICATION_CATEGORY}|rehabiliteringsbehov"),
                ("sent", f"ge{_day(bucket.start)}"),
                ("sent", f"lt{_day(bucket.end)}"),
            ]
            found[(unit, label, "meddelanden-fk", None)] = await search.total(
                "Communication", notices
            )
    return {k: v for k, v in found.items() if v}


async def _in_time(search: Searcher, episode: Json) -> bool:
    starts = [
        part["valueDate"]
        for ext in episode.get("extension", [])
        if ext["url"] == c.EXT_SICK_LEAVE
        for part in ext["extension"]
        if part["url"] == "start"
    ]
    if not starts:
        return False
    first = await search.matches(
        "Procedure",
        [
            ("patient", episode["patient"]["reference"]),
            ("code", f"{c.KVA}|GC001"),
            ("status", "completed"),
            ("date", f"ge{episode['period']['start']}"),
            ("_sort", "date"),
        ],
    )
    if not first:
        return False
    performed = first[0].get("performedDateTime") or first[0]["performedPeriod"]["start"]
    return _utc(performed) < _utc(min(starts)) + timedelta(days=91)


def as_dict(counts: list[Any]) -> dict[Key, int]:
    """KvaCount rows (or the CLI's JSON rows) as the searched counts' keys."""
    return {(r.unit, r.bucket, r.group, r.stratum): r.count for r in counts if r.count}
