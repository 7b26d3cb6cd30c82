"""Index who holds each stored resource (``_unit`` rows) for the care-unit filter.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

from reko_fhir.store.index import UNIT_ELEMENTS, unit_references

revision = "0006"
down_revision = "0005"
CHUNK = 1000
UNIT_PARAM = "_unit"  # these rows move to their own table in 0007


def upgrade() -> None:
    bind = op.get_bind()
    current = sa.table(
        "resource_current",
        sa.column("type"),
        sa.column("id"),
        sa.column("deleted"),
        sa.column("content"),
    )
    reference = sa.table(
        "reference_index",
        sa.column("type"),
        sa.column("id"),
        sa.column("param"),
        sa.column("target"),
    )
    for resource_type in UNIT_ELEMENTS:
        after = ""
        while True:  # keyset pages: a million rows never sit in memory at once
            rows = bind.execute(
                sa.select(current.c.id, current.c.content)
                .where(
                    current.c.type == resource_type,
                    current.c.deleted.is_(False),
                    current.c.id > after,
                )
                .order_by(current.c.id)
                .limit(CHUNK)
            ).all()
            if not rows:
                break
            after = rows[-1].id
            values = [
                {"type": resource_type, "id": row.id, "param": UNIT_PARAM, "target": ref}
                for row in rows
                for ref in sorted(unit_references(json.loads(row.content)))
            ]
            if values:
                bind.execute(sa.insert(reference), values)


def downgrade() -> None:
    reference = sa.table("reference_index", sa.column("param"))
    op.execute(sa.delete(reference).where(reference.c.param == UNIT_PARAM))
