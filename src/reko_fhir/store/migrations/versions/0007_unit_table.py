"""The holders of each resource in a table of their own, keyed by the resource.

As ``_unit`` rows of ``reference_index`` they were reachable through ``ix_reference_lookup``
(type, param, target), and PostgreSQL, on the statistics of a freshly filled table, answered
"is this Procedure held by the unit?" by walking every Procedure of the unit (148 s for a
patient search at 1M rows). ``unit_index`` has only its primary key (type, id, unit).

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
UNIT_PARAM = "_unit"
reference = sa.table(
    "reference_index", sa.column("type"), sa.column("id"), sa.column("param"), sa.column("target")
)
held = sa.table("unit_index", sa.column("type"), sa.column("id"), sa.column("unit"))


def upgrade() -> None:
    op.create_table(
        "unit_index",
        sa.Column("type", sa.String(64), primary_key=True),
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("unit", sa.String(256), primary_key=True),
    )
    rows = (
        sa.select(reference.c.type, reference.c.id, reference.c.target)
        .where(reference.c.param == UNIT_PARAM)
        .distinct()
    )
    op.execute(sa.insert(held).from_select(["type", "id", "unit"], rows))
    op.execute(sa.delete(reference).where(reference.c.param == UNIT_PARAM))


def downgrade() -> None:
    rows = sa.select(held.c.type, held.c.id, sa.literal(UNIT_PARAM), held.c.unit)
    op.execute(sa.insert(reference).from_select(["type", "id", "param", "target"], rows))
    op.drop_table("unit_index")
