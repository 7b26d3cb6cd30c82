"""KVÅ statistics: what the groups of the ``kva-statistik`` Measure count (profile contract 2).

Each group counts what a search of the same period counts (https://hl7.org/fhir/R4/search.html),
in the care units' partitions, per period (``Bucket``: a month, or the period a
``$evaluate-measure`` names). "In the period" is the search's ``date=ge{start}&date=lt{end}``
(``sent`` for Communications): a stored date or Period that overlaps [start, end), in UTC.

- ``gc001``, ``dv077``, ``aw026``: Procedures with that KVÅ code and ``status`` completed
  (``Procedure?code=urn:oid:1.2.752.116.1.3.2.1.4|GC001&status=completed&date=…``); ``gc001``
  is stratified by the ``reko-coordination-part`` code in ``Procedure.category``.
- ``patienter``: distinct Patients those GC001 Procedures name.
- ``nya-insatser``: EpisodeOfCare whose ``period.start`` lies in the period (every stored one
  is a GC001 episode: the RekoEpisodeOfCare profile fixes ``type``).
- ``inom-90-dagar``: of those, the ones whose patient's first completed GC001 at the unit on or
  after the episode's start (``date=ge{period.start}``, earliest ``date``) falls before the end
  of day 90 after the sick leave's start (the earliest ``sick-leave-period`` start).
- ``meddelanden-fk``: Communications with category ``rehabiliteringsbehov``, ``sent`` in the period.

The SQL store counts in a few GROUP BY queries (:mod:`.statistics_sql`); the memory store with
:func:`count_resources` from the same index values.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime, timedelta

from reko_fhir.mapping import codings as c
from reko_fhir.store import index
from reko_fhir.store.repository import Bucket, Json, KvaCount

KVA_GROUPS = {"GC001": "gc001", "DV077": "dv077", "AW026": "aw026"}
WITHIN_DAYS = 90
FK_CATEGORY = "rehabiliteringsbehov"


def narrowed(visible: frozenset[str] | None, units: frozenset[str] | None) -> frozenset[str] | None:
    """The partitions counted: those read (None: all), narrowed to ``units`` when given."""
    if units is None:
        return visible
    return units if visible is None else visible & units


def overlaps(low: datetime, high: datetime, bucket: Bucket) -> bool:
    """The search's ``date=ge{start}&date=lt{end}`` on a stored range [low, high)."""
    return high > bucket.start and low < bucket.end


def _token(resource: Json, param: str, system: str | None, values: Iterable[str]) -> str | None:
    wanted = set(values)
    for name, sys, value in index.tokens(resource):
        if name == param and (system is None or sys == system) and value in wanted:
            return value
    return None


def sick_leave_start(episode: Json) -> str | None:
    """The earliest ``start`` of the episode's ``sick-leave-period`` extensions (a date)."""
    starts = [
        part["valueDate"]
        for ext in episode.get("extension") or []
        if isinstance(ext, dict) and ext.get("url") == c.EXT_SICK_LEAVE
        for part in ext.get("extension") or []
        if isinstance(part, dict)
        and part.get("url") == "start"
        and isinstance(part.get("valueDate"), str)
    ]
    return min(starts) if starts else None


def within_days(first: datetime, sick_start: str) -> bool:
    """``first`` before the end of day :data:`WITHIN_DAYS` after ``sick_start``."""
    return first < index.instants(sick_start)[0] + timedelta(days=WITHIN_DAYS + 1)


def count_resources(
    stored: Iterable[tuple[str, Json]], buckets: Iterable[Bucket]
) -> list[KvaCount]:
    """The counts of (partition, resource) pairs, for the memory store."""
    periods = list(buckets)
    counts: dict[tuple[str, str, str, str | None], int] = defaultdict(int)
    patients: dict[tuple[str, str], set[str]] = defaultdict(set)
    gc001: dict[tuple[str, str], list[datetime]] = defaultdict(list)  # (unit, patient) → dates
    episodes: list[tuple[str, Json]] = []
    for partition, resource in stored:
        kind = resource.get("resourceType")
        dates = list(index.dates(resource))
        if kind == "Procedure" and _token(resource, "status", "", ["completed"]):
            code = _token(resource, "code", c.KVA, KVA_GROUPS)
            patient = next((t for p, t in index.references(resource) if p == "patient"), None)
            part = _token(resource, "category", c.CS_PART, _parts(resource))
            if code is None:
                continue
            if code == "GC001" and patient is not None:
                gc001[(partition, patient)] += [low for _, low, _ in dates]
            for bucket in periods:
                if any(overlaps(low, high, bucket) for _, low, high in dates):
                    counts[(partition, bucket.label, KVA_GROUPS[code], None)] += 1
                    if code == "GC001":
                        if part is not None:
                            counts[(partition, bucket.label, "gc001", part)] += 1
                        if patient is not None:
                            patients[(partition, bucket.label)].add(patient)
        elif kind == "EpisodeOfCare":
            episodes.append((partition, resource))
        elif kind == "Communication" and _token(
            resource, "category", c.CS_COMMUNICATION_CATEGORY, [FK_CATEGORY]
        ):
            for bucket in periods:
                if any(overlaps(low, high, bucket) for p, low, high in dates if p == "sent"):
                    counts[(partition, bucket.label, "meddelanden-fk", None)] += 1
    for (partition, label), seen in patients.items():
        counts[(partition, label, "patienter", None)] = len(seen)
    for partition, episode in episodes:
        started = [low for _, low, _ in index.dates(episode)]
        patient = next((t for p, t in index.references(episode) if p == "patient"), None)
        for bucket in periods:
            if not any(bucket.start <= low < bucket.end for low in started):
                continue
            counts[(partition, bucket.label, "nya-insatser", None)] += 1
            sick = sick_leave_start(episode)
            # date=ge{start}: a dateTime [low, low + 1 s) reaches the start when its end does.
            later = [
                low
                for low in gc001.get((partition, patient or ""), [])
                if low + timedelta(seconds=1) > started[0]
            ]
            if sick is not None and later and within_days(min(later), sick):
                counts[(partition, bucket.label, "inom-90-dagar", None)] += 1
    return [KvaCount(u, b, g, n, s) for (u, b, g, s), n in sorted(counts.items(), key=_key)]


def _parts(resource: Json) -> list[str]:
    return [v for p, s, v in index.tokens(resource) if p == "category" and s == c.CS_PART]


def _key(item: tuple[tuple[str, str, str, str | None], int]) -> tuple[str, str, str, str]:
    (unit, bucket, group, stratum), _ = item
    return unit, bucket, group, stratum or ""
