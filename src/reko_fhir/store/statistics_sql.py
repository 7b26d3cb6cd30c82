"""The KVÅ statistics (:mod:`reko_fhir.store.statistics`) as four GROUP BY queries on the index
tables: the counts a search makes, made once per unit and period instead of once per search.

Every query joins the periods as a small derived table, so a year by month is still four
queries, and groups by partition (the care unit): a caller that reads every partition gets one
row per unit. Only the sick leave's start is read from the stored JSON (it is not a search
parameter): SQLite's ``json_each``, PostgreSQL's ``jsonb_array_elements``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    DateTime,
    String,
    and_,
    case,
    distinct,
    func,
    literal,
    literal_column,
    select,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from reko_fhir.mapping import codings as c
from reko_fhir.store.conditions import in_partitions
from reko_fhir.store.repository import Bucket, KvaCount
from reko_fhir.store.schema import date_index, reference_index, resource_current, token_index
from reko_fhir.store.statistics import FK_CATEGORY, KVA_GROUPS, WITHIN_DAYS

_STAMP = DateTime(timezone=True)


def _buckets(buckets: Sequence[Bucket]) -> Any:
    rows = [
        select(
            literal(b.label, String).label("label"),
            literal(b.start, _STAMP).label("start"),
            literal(b.end, _STAMP).label("end"),
        )
        for b in buckets
    ]
    return (rows[0] if len(rows) == 1 else union_all(*rows)).subquery("bucket")


def _on(alias: Any, owner: Any, param: str) -> Any:
    return and_(alias.c.type == owner.c.type, alias.c.id == owner.c.id, alias.c.param == param)


def _completed_kva(owner: Any, name: str, codes: Sequence[str]) -> tuple[Any, Any]:
    """The code token's alias, and ``owner`` joined to the tokens of a completed Procedure with
    a KVÅ code of ``codes`` (``code=urn:oid:…|GC001&status=completed``)."""
    code = token_index.alias(f"{name}_code")
    status = token_index.alias(f"{name}_status")
    joined = owner.join(
        code, and_(_on(code, owner, "code"), code.c.system == c.KVA, code.c.value.in_(codes))
    ).join(status, and_(_on(status, owner, "status"), status.c.value == "completed"))
    return code, joined


async def kva_counts(
    conn: AsyncConnection, buckets: Sequence[Bucket], partitions: frozenset[str] | None
) -> list[KvaCount]:
    """Every group's counts per partition (of ``partitions``, None: all) and bucket."""
    if not buckets:
        return []
    found: list[KvaCount] = []
    for query in (
        _procedures(buckets, partitions),
        _parts(buckets, partitions),
        _episodes(buckets, partitions, conn.dialect.name == "sqlite"),
        _notices(buckets, partitions),
    ):
        for row in (await conn.execute(query)).all():
            found += _counts(row)
    return [f for f in found if f.count]


def _counts(row: Any) -> list[KvaCount]:
    unit, label, kind = row[0], row[1], row[2]
    if kind in KVA_GROUPS:  # _procedures: the code's count, and GC001's patients
        out = [KvaCount(unit, label, KVA_GROUPS[kind], int(row[3]))]
        if kind == "GC001":
            out.append(KvaCount(unit, label, "patienter", int(row[4])))
        return out
    if kind == "part":
        return [KvaCount(unit, label, "gc001", int(row[4]), str(row[3]))]
    if kind == "episode":
        return [
            KvaCount(unit, label, "nya-insatser", int(row[3])),
            KvaCount(unit, label, "inom-90-dagar", int(row[4])),
        ]
    return [KvaCount(unit, label, "meddelanden-fk", int(row[3]))]


def _current(name: str, kind: str, partitions: frozenset[str] | None) -> tuple[Any, list[Any]]:
    owner = resource_current.alias(name)
    where = [
        owner.c.type == kind,
        owner.c.deleted.is_(False),
        in_partitions(owner.c.partition, partitions),
    ]
    return owner, where


def _per_unit_and_bucket(
    owner: Any, bucket: Any, source: Any, where: list[Any], *columns: Any, by: tuple[Any, ...]
) -> Any:
    """One row per unit (``owner``'s partition), bucket and ``by`` (the code or part counted,
    or nothing): the partition, the bucket's label, then ``columns``."""
    return (
        select(owner.c.partition, bucket.c.label, *columns)
        .select_from(source)
        .where(*where)
        .group_by(owner.c.partition, bucket.c.label, *by)
    )


def _procedures(buckets: Sequence[Bucket], partitions: frozenset[str] | None) -> Any:
    """GC001, DV077, AW026 per unit and bucket, and the distinct patients of the GC001s."""
    proc, where = _current("proc", "Procedure", partitions)
    bucket = _buckets(buckets)
    code, joined = _completed_kva(proc, "p", tuple(KVA_GROUPS))
    when = date_index.alias("p_date")
    patient = reference_index.alias("p_patient")
    source = (
        joined.join(when, _on(when, proc, "date"))
        .join(bucket, and_(when.c.high > bucket.c.start, when.c.low < bucket.c.end))
        .outerjoin(patient, _on(patient, proc, "patient"))
    )
    counted = (func.count(distinct(proc.c.id)), func.count(distinct(patient.c.target)))
    return _per_unit_and_bucket(
        proc, bucket, source, where, code.c.value, *counted, by=(code.c.value,)
    )


def _parts(buckets: Sequence[Bucket], partitions: frozenset[str] | None) -> Any:
    """GC001 stratified by ``reko-coordination-part`` (``category=…reko-coordination-part|x``)."""
    proc, where = _current("proc", "Procedure", partitions)
    bucket = _buckets(buckets)
    _, joined = _completed_kva(proc, "p", ("GC001",))
    when = date_index.alias("p_date")
    part = token_index.alias("p_part")
    source = (
        joined.join(part, and_(_on(part, proc, "category"), part.c.system == c.CS_PART))
        .join(when, _on(when, proc, "date"))
        .join(bucket, and_(when.c.high > bucket.c.start, when.c.low < bucket.c.end))
    )
    kind = literal("part", String)
    count = func.count(distinct(proc.c.id))
    return _per_unit_and_bucket(
        proc, bucket, source, where, kind, part.c.value, count, by=(part.c.value,)
    )


def _sick_leave_start(sqlite: bool) -> Any:
    """The earliest ``sick-leave-period`` start of the episode row ``episode`` (a date text)."""
    url = c.EXT_SICK_LEAVE  # ours, a constant: no quote in it
    if sqlite:
        sql = (
            "(SELECT min(json_extract(part.value, '$.valueDate')) "
            "FROM json_each(episode.content, '$.extension') AS ext, "
            "json_each(ext.value, '$.extension') AS part "
            "WHERE json_extract(ext.value, '$.url') = 'URL' "
            "AND json_extract(part.value, '$.url') = 'start')"
        )
    else:
        sql = (
            "(SELECT min(part ->> 'valueDate') "
            "FROM jsonb_array_elements(CAST(episode.content AS jsonb) -> 'extension') AS ext, "
            "jsonb_array_elements(ext -> 'extension') AS part "
            "WHERE ext ->> 'url' = 'URL' AND part ->> 'url' = 'start')"
        )
    return literal_column(sql.replace("URL", url))


def _within(first: Any, sqlite: bool) -> Any:
    """``first`` (an instant) before the end of day 90 after the sick leave's start."""
    days = WITHIN_DAYS + 1
    start = _sick_leave_start(sqlite)
    if sqlite:
        return func.julianday(first) < func.julianday(start) + days
    limit: Any = literal_column(
        f"(CAST({start} AS timestamp) + interval '{days} days') AT TIME ZONE 'UTC'"
    )
    return first < limit


def _episodes(buckets: Sequence[Bucket], partitions: frozenset[str] | None, sqlite: bool) -> Any:
    """Episodes started per unit and bucket, and those whose first GC001 came in time."""
    episode, where = _current("episode", "EpisodeOfCare", partitions)
    bucket = _buckets(buckets)
    started = date_index.alias("e_date")
    patient = reference_index.alias("e_patient")
    # The patient's first completed GC001 at the unit from the episode's start on.
    proc, _ = _current("first_proc", "Procedure", None)
    _, joined = _completed_kva(proc, "f", ("GC001",))
    names = reference_index.alias("f_patient")
    when = date_index.alias("f_date")
    first = (
        select(func.min(when.c.low))
        .select_from(
            joined.join(names, _on(names, proc, "patient")).join(when, _on(when, proc, "date"))
        )
        .where(
            proc.c.type == "Procedure",
            proc.c.deleted.is_(False),
            proc.c.partition == episode.c.partition,
            names.c.target == patient.c.target,
            when.c.high > started.c.low,
        )
        .scalar_subquery()
    )
    source = (
        episode.join(started, _on(started, episode, "date"))
        .join(bucket, and_(started.c.low >= bucket.c.start, started.c.low < bucket.c.end))
        .outerjoin(patient, _on(patient, episode, "patient"))
    )
    counted = (
        func.count(distinct(episode.c.id)),
        func.count(distinct(case((_within(first, sqlite), episode.c.id)))),
    )
    kind = literal("episode", String)
    return _per_unit_and_bucket(episode, bucket, source, where, kind, *counted, by=())


def _notices(buckets: Sequence[Bucket], partitions: frozenset[str] | None) -> Any:
    """Communications to Försäkringskassan (category rehabiliteringsbehov) sent per bucket."""
    notice, where = _current("notice", "Communication", partitions)
    bucket = _buckets(buckets)
    category = token_index.alias("n_category")
    sent = date_index.alias("n_sent")
    source = (
        notice.join(
            category,
            and_(
                _on(category, notice, "category"),
                category.c.system == c.CS_COMMUNICATION_CATEGORY,
                category.c.value == FK_CATEGORY,
            ),
        )
        .join(sent, _on(sent, notice, "sent"))
        .join(bucket, and_(sent.c.high > bucket.c.start, sent.c.low < bucket.c.end))
    )
    kind = literal("notice", String)
    count = func.count(distinct(notice.c.id))
    return _per_unit_and_bucket(notice, bucket, source, where, kind, count, by=())
