"""Care-unit partitions: a ``partition`` column on every version row, decided once.

Before, who held a resource was read from the Organizations and PractitionerRoles it named
(``unit_index``), so a later write of such a directory resource by another unit could change
who saw it. Now each resource lives in one care unit's partition (its HSA-id), set when it is
created. Existing rows get the one care unit their holders name (a Patient: the one unit whose
resources are about them; a Provenance: its target's); a row whose holders name several units,
or none, goes to the unassigned partition, which only a platform token reads.

``conditional_create`` is keyed by partition too: a condition matches inside one partition.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import json
from collections import defaultdict

import sqlalchemy as sa
from alembic import op

from reko_fhir.store.index import unit_references

revision = "0008"
down_revision = "0007"
HSA_SYSTEMS = ("urn:oid:1.2.752.29.4.19", "urn:oid:1.2.752.129.2.1.4.1")
CARE_TYPES = ("EpisodeOfCare", "CareTeam", "Consent", "CarePlan", "Procedure", "Communication")
CHUNK = 1000

current = sa.table(
    "resource_current",
    sa.column("type"),
    sa.column("id"),
    sa.column("deleted"),
    sa.column("content"),
    sa.column("partition"),
)
version = sa.table("resource_version", sa.column("type"), sa.column("id"), sa.column("partition"))
held = sa.table("unit_index", sa.column("type"), sa.column("id"), sa.column("unit"))
reference = sa.table(
    "reference_index", sa.column("type"), sa.column("id"), sa.column("param"), sa.column("target")
)


def upgrade() -> None:
    for table in ("resource_version", "resource_current"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(
                sa.Column("partition", sa.String(128), nullable=False, server_default="")
            )
    op.create_index(
        "ix_current_partition", "resource_current", ["type", "partition", "last_updated"]
    )
    _assign_partitions()
    op.execute(
        sa.update(version).values(
            partition=sa.select(current.c.partition)
            .where(current.c.type == version.c.type, current.c.id == version.c.id)
            .scalar_subquery()
        )
    )
    op.rename_table("conditional_create", "conditional_create_0007")
    op.create_table(
        "conditional_create",
        sa.Column("partition", sa.String(128), primary_key=True),
        sa.Column("type", sa.String(64), primary_key=True),
        sa.Column("query", sa.String(512), primary_key=True),
        sa.Column("id", sa.String(64), nullable=False),
    )
    old = sa.table(
        "conditional_create_0007", sa.column("type"), sa.column("query"), sa.column("id")
    )
    partition = (
        sa.select(current.c.partition)
        .where(current.c.type == old.c.type, current.c.id == old.c.id)
        .scalar_subquery()
    )
    op.execute(
        sa.insert(
            sa.table(
                "conditional_create", *(sa.column(n) for n in ("partition", "type", "query", "id"))
            )
        ).from_select(
            ["partition", "type", "query", "id"],
            sa.select(sa.func.coalesce(partition, ""), old.c.type, old.c.query, old.c.id),
        )
    )
    op.drop_table("conditional_create_0007")
    op.drop_table("unit_index")


def _assign_partitions() -> None:
    bind = op.get_bind()
    organization_unit: dict[str, str] = {}
    role_organization: dict[str, str] = {}
    for row in bind.execute(
        sa.select(current.c.type, current.c.id, current.c.content).where(
            current.c.type.in_(("Organization", "PractitionerRole")), current.c.deleted.is_(False)
        )
    ):
        content = json.loads(row.content)
        if row.type == "Organization":
            for ident in content.get("identifier") or []:
                if isinstance(ident, dict) and ident.get("system") in HSA_SYSTEMS:
                    organization_unit[f"Organization/{row.id}"] = str(ident.get("value"))
        else:
            ref = (content.get("organization") or {}).get("reference")
            if isinstance(ref, str):
                role_organization[f"PractitionerRole/{row.id}"] = ref

    def unit_of(holder: str) -> str | None:
        return organization_unit.get(role_organization.get(holder, holder))

    units: dict[tuple[str, str], set[str]] = defaultdict(set)
    for holder in bind.execute(sa.select(held.c.type, held.c.id, held.c.unit)):
        unit = unit_of(holder.unit)
        if unit:
            units[(holder.type, holder.id)].add(unit)
    for ref, unit in organization_unit.items():  # a care unit's Organization is its own
        units[("Organization", ref.split("/", 1)[1])] = {unit}
    partitions = {key: next(iter(found)) for key, found in units.items() if len(found) == 1}
    patients: dict[str, set[str]] = defaultdict(set)
    for about in bind.execute(
        sa.select(reference.c.type, reference.c.id, reference.c.target).where(
            reference.c.type.in_(CARE_TYPES), reference.c.param == "patient"
        )
    ):
        patients[about.target].add(partitions.get((about.type, about.id), ""))
    for target, cared_by in patients.items():
        if len(cared_by) == 1 and "" not in cared_by and target.startswith("Patient/"):
            partitions[("Patient", target.split("/", 1)[1])] = next(iter(cared_by))
    for provenance in bind.execute(
        sa.select(current.c.id, current.c.content).where(current.c.type == "Provenance")
    ):
        targets = {
            tuple(str(t.get("reference", "")).split("/")[:2])
            for t in json.loads(provenance.content or "{}").get("target") or []
            if isinstance(t, dict)
        }
        of_targets = {partitions.get((t[0], t[1]), "") for t in targets if len(t) == 2}
        if len(of_targets) == 1 and "" not in of_targets:
            partitions[("Provenance", provenance.id)] = next(iter(of_targets))
    rows = [{"t": t, "i": i, "p": p} for (t, i), p in partitions.items()]
    statement = (
        sa.update(current)
        .where(current.c.type == sa.bindparam("t"), current.c.id == sa.bindparam("i"))
        .values(partition=sa.bindparam("p"))
    )
    for start in range(0, len(rows), CHUNK):
        bind.execute(statement, rows[start : start + CHUNK])


def downgrade() -> None:
    op.create_table(
        "unit_index",
        sa.Column("type", sa.String(64), primary_key=True),
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("unit", sa.String(256), primary_key=True),
    )
    bind = op.get_bind()
    after = ("", "")
    while True:  # keyset pages: the holders again, from the content (as 0006 found them)
        rows = bind.execute(
            sa.select(current.c.type, current.c.id, current.c.content)
            .where(
                current.c.deleted.is_(False),
                sa.tuple_(current.c.type, current.c.id) > sa.tuple_(*after),
            )
            .order_by(current.c.type, current.c.id)
            .limit(CHUNK)
        ).all()
        if not rows:
            break
        after = (rows[-1].type, rows[-1].id)
        values = [
            {"type": row.type, "id": row.id, "unit": ref}
            for row in rows
            for ref in sorted(unit_references(json.loads(row.content)))
        ]
        if values:
            bind.execute(sa.insert(held), values)
    op.rename_table("conditional_create", "conditional_create_0008")
    op.create_table(
        "conditional_create",
        sa.Column("type", sa.String(64), primary_key=True),
        sa.Column("query", sa.String(512), primary_key=True),
        sa.Column("id", sa.String(64), nullable=False),
    )
    # Two partitions' equal conditions become one key again: the first of each is kept.
    op.execute(
        "INSERT INTO conditional_create (type, query, id) "
        "SELECT type, query, MIN(id) FROM conditional_create_0008 GROUP BY type, query"
    )
    op.drop_table("conditional_create_0008")
    op.drop_index("ix_current_partition", "resource_current")
    for table in ("resource_current", "resource_version"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("partition")
