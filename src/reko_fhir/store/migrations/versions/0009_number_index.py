"""Number search: a row per whole-number value (a worklist Task's sick-leave length).

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"


def upgrade() -> None:
    op.create_table(
        "number_index",
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("param", sa.String(64), nullable=False),
        sa.Column("value", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_number_lookup", "number_index", ["type", "param", "value"])
    op.create_index("ix_number_owner", "number_index", ["type", "id"])


def downgrade() -> None:
    op.drop_table("number_index")
